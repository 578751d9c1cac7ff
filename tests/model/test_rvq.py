"""Residual vector quantizer: codes round trip, fewer quantizers, training procedures."""
from __future__ import annotations

import torch

from model.rvq import ResidualVectorQuantizer, kmeans


def clustered_latents(n: int = 4000, dim: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(24, dim, generator=g) * 2
    pick = torch.randint(24, (n,), generator=g)
    return (centres[pick] + 0.3 * torch.randn(n, dim, generator=g)).t().reshape(1, dim, n)


def fitted_quantizer(x: torch.Tensor, n_q: int = 6) -> ResidualVectorQuantizer:
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(x.shape[1], n_q, 64, 8, quantizer_dropout=0.0)
    q.train()
    q(x)  # the first training call fits every codebook by k-means on the residuals
    return q.eval()


def test_decoding_codes_equals_quantized_output():
    x = clustered_latents()
    q = fitted_quantizer(x)
    with torch.no_grad():
        out = q(x)
        assert out.codes.shape == (1, 6, x.shape[-1])
        assert torch.equal(q.encode(x), out.codes)
        torch.testing.assert_close(q.decode(out.codes), out.quantized, rtol=1e-5, atol=1e-5)


def test_fewer_quantizers_never_lower_error():
    x = clustered_latents()
    q = fitted_quantizer(x)
    with torch.no_grad():
        target = torch.nn.functional.conv1d(x, q.project_in.weight, q.project_in.bias)
        errors = []
        for n in range(1, q.n_q + 1):
            codes = q.encode(x, n)
            approx = sum(q.codebooks[i][codes[0, i]] for i in range(n)).t().unsqueeze(0)
            errors.append(float(((approx - target) ** 2).mean()))
    assert all(later <= earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]


def test_kmeans_init_dead_code_restart_and_straight_through():
    x = clustered_latents().requires_grad_(True)
    q = ResidualVectorQuantizer(16, 2, 64, 8, dead_code_threshold=0.5)
    assert not bool(q.initialized)
    q.train()
    out = q(x)
    assert bool(q.initialized)
    (out.quantized.sum() + out.commitment_loss + out.codebook_loss).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()  # straight-through passes gradients
    assert q.codebooks.grad is not None and q.codebooks.grad.abs().sum() > 0
    # make code 0 of the first book unreachable: it must be restarted from batch residuals
    with torch.no_grad():
        q.codebooks[0, 0] = 1e6
    for _ in range(100):
        q(x.detach())
    assert q.codebooks[0, 0].abs().max() < 1e3


def test_run_time_n_q_is_validated():
    q = ResidualVectorQuantizer(16, 3, 8, 4).eval()
    x = torch.randn(1, 16, 5)
    assert q(x, n_q=1).codes.shape == (1, 1, 5)
    try:
        q(x, n_q=4)
    except ValueError as exc:
        assert "between 1 and 3" in str(exc)
    else:
        raise AssertionError("n_q=4 on a 3-quantizer RVQ must raise")


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(1)
    pts = torch.cat([torch.randn(200, 2, generator=g) * 0.05 + c for c in (torch.tensor([5.0, 0]), torch.tensor([-5.0, 0]))])
    centres = kmeans(pts, 2, generator=g)
    assert sorted(round(float(c)) for c in centres[:, 0]) == [-5, 5]
