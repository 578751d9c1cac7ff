"""Fused elementwise passes over complex spectra for the spectral loss's hand-written gradient
(:mod:`model.training.losses`).

On the CPU each is one numba pass over float32 arrays; torch's complex ``abs`` and the chains of
elementwise ops they replace cost several times more there (docs/benchmarks.md). On other devices
the same formulas run as torch ops (``*_torch``). Complex spectra ``[..., F]`` (complex64) are read
as interleaved real and imaginary float32 pairs.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

_jit = numba.njit(cache=True, fastmath=True, nogil=True)


@_jit
def _sign(d):  # pragma: no cover - numba
    return np.float32(d > 0) - np.float32(d < 0)


@_jit
def _magnitudes_l1_kernel(spec_e, spec_r, mag_e, mag_r, grad_mag, scale):  # pragma: no cover - numba
    """Flat arrays: ``spec_*`` ``[2 K]`` interleaved pairs, the others ``[K]``; returns ``sum|d|``."""
    total = 0.0
    for i in range(mag_e.shape[0]):
        e = np.sqrt(spec_e[2 * i] * spec_e[2 * i] + spec_e[2 * i + 1] * spec_e[2 * i + 1])
        r = np.sqrt(spec_r[2 * i] * spec_r[2 * i] + spec_r[2 * i + 1] * spec_r[2 * i + 1])
        mag_e[i] = e
        mag_r[i] = r
        total += abs(e - r)
        grad_mag[i] = scale * _sign(e - r)
    return total


@_jit
def _spectrum_gradient_kernel(spec_e, mag_e, grad_mag, out):  # pragma: no cover - numba
    """``spec_e``/``out`` ``[rows, 2 F]`` interleaved pairs, ``mag_e``/``grad_mag`` ``[rows, F]``."""
    tiny = np.float32(1.1754944e-38)
    bins = mag_e.shape[1]
    for row in range(mag_e.shape[0]):
        for k in range(bins):
            g = grad_mag[row, k] / max(mag_e[row, k], tiny)
            out[row, 2 * k] = g * spec_e[row, 2 * k]
            out[row, 2 * k + 1] = g * spec_e[row, 2 * k + 1]
        for k in (0, bins - 1):
            out[row, 2 * k] *= np.float32(2.0)
            out[row, 2 * k + 1] *= np.float32(2.0)


def _pairs(spec: torch.Tensor, row_length: int = -1) -> np.ndarray:
    """A contiguous complex64 tensor's interleaved float32 view, ``[2 numel]`` or ``[rows, 2 row_length]``."""
    flat = torch.view_as_real(spec).reshape(-1).numpy()
    return flat if row_length < 0 else flat.reshape(-1, 2 * row_length)


def magnitudes_l1_torch(spec_e: torch.Tensor, spec_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                             torch.Tensor, torch.Tensor]:
    """:func:`magnitudes_l1` as torch ops (any device)."""
    mag_e, mag_r = spec_e.abs(), spec_r.abs()
    diff = mag_e - mag_r
    return mag_e, mag_r, diff.sign() / diff.numel(), diff.abs().mean()


def magnitudes_l1(spec_e: torch.Tensor, spec_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                       torch.Tensor, torch.Tensor]:
    """``|E|``, ``|R|``, ``d mean||E| - |R|| / d |E|`` (each ``[..., F]`` float32) and that mean
    (a scalar), from complex spectra ``spec_e``/``spec_r`` ``[..., F]``."""
    if spec_e.device.type != "cpu":
        return magnitudes_l1_torch(spec_e, spec_r)
    scale = 1.0 / spec_e.numel()
    mag_e, mag_r, grad_mag = (torch.empty(spec_e.shape, dtype=torch.float32) for _ in range(3))
    total = _magnitudes_l1_kernel(_pairs(spec_e.contiguous()), _pairs(spec_r.contiguous()), mag_e.view(-1).numpy(),
                                  mag_r.view(-1).numpy(), grad_mag.view(-1).numpy(), np.float32(scale))
    return mag_e, mag_r, grad_mag, torch.tensor(total * scale, dtype=torch.float32)


def spectrum_gradient_torch(spec_e: torch.Tensor, mag_e: torch.Tensor, grad_mag: torch.Tensor) -> torch.Tensor:
    """:func:`spectrum_gradient` as torch ops (any device)."""
    grad = grad_mag / mag_e.clamp_min(torch.finfo(mag_e.dtype).tiny) * spec_e
    grad[..., 0] *= 2
    grad[..., -1] *= 2
    return grad


def spectrum_gradient(spec_e: torch.Tensor, mag_e: torch.Tensor, grad_mag: torch.Tensor) -> torch.Tensor:
    """The gradient with respect to the complex spectrum ``spec_e [..., F]`` (as ``d/d Re + i d/d Im``),
    given ``grad_mag``, the gradient with respect to its magnitude ``mag_e``; 0 where ``spec_e`` is
    0. Its first (DC) and last (Nyquist) bins come doubled, ready for the real FFT's adjoint (an
    ``irfft``, which halves those two relative to the others)."""
    if spec_e.device.type != "cpu":
        return spectrum_gradient_torch(spec_e, mag_e, grad_mag)
    bins = spec_e.shape[-1]
    out = torch.empty_like(spec_e)
    _spectrum_gradient_kernel(_pairs(spec_e.contiguous(), bins), mag_e.contiguous().view(-1, bins).numpy(),
                              grad_mag.contiguous().view(-1, bins).numpy(), _pairs(out, bins))
    return out
