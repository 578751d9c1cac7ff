"""The spectral loss's hand-written gradient equals autograd through ``torch.stft``; its fused
numba passes equal their torch formulas; the training allocator setting keeps freed memory."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from model.training.losses import MultiScaleMelLoss, SeparationLoss, mel_filterbank
from model.training import spectral_kernels


def autograd_reference(est: torch.Tensor, ref: torch.Tensor, windows: tuple[int, ...], rate_hz: int,
                       log_mel_weight: float, eps: float = 1e-5) -> torch.Tensor:
    """The loss as defined: torch.stft magnitudes (centre, reflect padding), log-mel and linear L1."""
    e, r = est.reshape(-1, est.shape[-1]), ref.reshape(-1, ref.shape[-1])
    total = est.new_zeros(())
    for w in windows:
        window, mel = torch.hann_window(w, dtype=est.dtype), mel_filterbank(rate_hz, w, min(64, w // 4)).to(est.dtype)
        spec_e = torch.stft(e, w, w // 4, window=window, return_complex=True).abs()
        spec_r = torch.stft(r, w, w // 4, window=window, return_complex=True).abs()
        if log_mel_weight:
            total = total + log_mel_weight * F.l1_loss(torch.log(mel @ spec_e + eps), torch.log(mel @ spec_r + eps))
        total = total + F.l1_loss(spec_e, spec_r)
    return total / len(windows)


@pytest.mark.parametrize("length", [4096, 4097, 5000])  # a multiple of every hop, and two that are not
@pytest.mark.parametrize("log_mel_weight", [1.0, 0.0])
def test_spectral_loss_and_gradient_equal_autograd_through_stft(length: int, log_mel_weight: float) -> None:
    torch.manual_seed(length)
    windows = (64, 128, 256, 512, 1024, 2048)
    est = torch.randn(2, 3, length, dtype=torch.float64)
    est[0, 1] = 0.0  # a silent estimate: its spectrum is 0, where autograd takes |E|'s gradient as 0
    est.requires_grad_(True)
    ref = torch.randn(2, 3, length, dtype=torch.float64)
    expected = autograd_reference(est, ref, windows, 44100, log_mel_weight)
    (expected_grad,) = torch.autograd.grad(expected * 3.0, est)
    loss = MultiScaleMelLoss(44100, windows, log_mel_weight=log_mel_weight)
    value = loss(est.float(), ref.float())
    (grad,) = torch.autograd.grad(value * 3.0, est)  # the outer factor reaches the closed-form gradient
    assert float(value) == pytest.approx(float(expected), rel=1e-5)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=0, atol=1e-4 * float(expected_grad.abs().max()))


def test_spectral_loss_refuses_signals_shorter_than_half_its_longest_window() -> None:
    with pytest.raises(ValueError, match="too short"):
        MultiScaleMelLoss(44100)(torch.zeros(1, 1, 1000), torch.zeros(1, 1, 1000))
    with pytest.raises(ValueError, match="multiples of 4"):
        MultiScaleMelLoss(44100, windows=(66,))


def _loss_gradient(loss: SeparationLoss, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[list[float], torch.Tensor]:
    """Each term of ``loss`` and the total's gradient with respect to ``estimate [B, S, T]``."""
    est = estimate.clone().requires_grad_(True)
    zero = torch.zeros(())
    terms = loss(est, reference, zero, zero)
    terms.total.backward()
    return [float(t.detach()) for t in terms], est.grad


def test_stem_weights_scale_each_stems_gradient_and_equal_weights_change_nothing() -> None:
    torch.manual_seed(2)
    est, ref = 0.3 * torch.randn(2, 4, 3000), 0.3 * torch.randn(2, 4, 3000)
    ref[1, 2] = 0.0  # a silent stem in one example: the SNR floor's branch
    plain_terms, plain = _loss_gradient(SeparationLoss(22050, snr_weight=10.0), est, ref)
    same_terms, same = _loss_gradient(SeparationLoss(22050, snr_weight=10.0, stem_weights=(2.0,) * 4), est, ref)
    assert same_terms == pytest.approx(plain_terms, rel=1e-6)
    torch.testing.assert_close(same, plain)
    # (1, 1, 1, 3) scaled to mean 1: (2/3, 2/3, 2/3, 2); every term is a mean over stems, so each
    # stem's gradient is its weight times the unweighted one
    weighted_terms, weighted = _loss_gradient(SeparationLoss(22050, snr_weight=10.0, stem_weights=(1.0, 1.0, 1.0, 3.0)),
                                              est, ref)
    scale = torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0])[None, :, None]
    torch.testing.assert_close(weighted, plain * scale, rtol=1e-4, atol=1e-9)
    assert weighted_terms[0] != pytest.approx(plain_terms[0], rel=1e-3)


def test_stem_weights_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        SeparationLoss(22050, stem_weights=(1.0, -1.0))


def test_numba_passes_equal_their_torch_formulas() -> None:
    torch.manual_seed(0)
    spec_e = torch.randn(3, 50, 33, dtype=torch.complex64)
    spec_e[0, :4] = 0  # zeros: magnitude 0, gradient 0
    spec_r = torch.randn(3, 50, 33, dtype=torch.complex64)
    fused = spectral_kernels.magnitudes_l1(spec_e, spec_r)
    plain = spectral_kernels.magnitudes_l1_torch(spec_e, spec_r)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b)
    grad_mag = torch.randn(3, 50, 33)
    torch.testing.assert_close(spectral_kernels.spectrum_gradient(spec_e, fused[0], grad_mag),
                               spectral_kernels.spectrum_gradient_torch(spec_e, plain[0], grad_mag))
    assert float(spectral_kernels.spectrum_gradient(spec_e, fused[0], grad_mag)[0, :4].abs().max()) == 0.0


def test_training_allocator_setting_keeps_freed_blocks_for_reuse() -> None:
    """A step's large temporaries (here 8 blocks of 8 MB), freed and allocated again, fault no
    pages in again once the setting is on: the heap keeps them. Without it glibc's choice varies
    from run to run (on the dev machine 0 or about 156,000 page faults over these 10 steps, by
    whether it trims the heap's free top), so the test checks the setting's guarantee rather than
    a comparison; its effect on a training step is in docs/benchmarks.md."""
    script = """
import resource, torch
from model.training.allocator import keep_freed_memory
assert keep_freed_memory()
def step():
    blocks = [torch.ones(2_000_000) for _ in range(8)]
    del blocks
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    for _ in range(3):
        faults = int(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)
        assert faults < 2000, f"{faults} page faults in 10 steps: freed blocks went back to the kernel"  # one block: 1,953
