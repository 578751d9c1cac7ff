"""Training losses: multi-scale mel/STFT loss, time-domain MSE, thresholded SNR, and their weighted sum."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .spectral_kernels import magnitudes_l1, spectrum_gradient


def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular HTK-mel filters ``[n_mels, n_fft // 2 + 1]`` (slaney-style area normalisation)."""
    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    n_bins = n_fft // 2 + 1
    freqs = torch.linspace(0, sample_rate_hz / 2, n_bins, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(torch.tensor(sample_rate_hz / 2.0))),
                                     n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    filters = filters * (2.0 / (upper - lower))
    return filters.float()


def _windowed_frames(padded: torch.Tensor, offset: int, hop: int, frames: int, window: torch.Tensor) -> torch.Tensor:
    """``frames`` windowed frames of ``padded [N, L]``, the first at sample ``offset``, ``hop`` apart:
    ``[N, frames, w]`` (``w = len(window)``)."""
    w = window.shape[0]
    return padded[:, offset:offset + (frames - 1) * hop + w].unfold(-1, w, hop) * window


def _overlap_add_(grad_padded: torch.Tensor, grad_frames: torch.Tensor, offset: int, hop: int,
                  window: torch.Tensor, scale: float) -> None:
    """Add ``scale`` x the adjoint of :func:`_windowed_frames` applied to ``grad_frames [N, frames, w]``
    to ``grad_padded [N, L]`` in place (``hop`` divides ``w``)."""
    n, frames, w = grad_frames.shape
    weighted = grad_frames * (window * scale)
    for part in range(w // hop):  # each frame's part ``part`` lands ``part`` hops after the frame's start
        start = offset + part * hop
        grad_padded[:, start:start + frames * hop].view(n, frames, hop).add_(weighted[..., part * hop:(part + 1) * hop])


def _log_l1(mel_e: torch.Tensor, mel_r: torch.Tensor, eps: float, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight x mean|log(mel_e + eps) - log(mel_r + eps)|`` (a scalar) and its gradient with
    respect to ``mel_e`` (``[...]`` like the inputs)."""
    shifted = mel_e + eps
    diff = (shifted / (mel_r + eps)).log_()
    return diff.abs().mean() * weight, diff.sign_().mul_(weight / mel_e.numel()).div_(shifted)


def _reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad, pad), mode="reflect")`` for ``x [N, T]`` -> ``[N, T + 2 pad]``."""
    return F.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)


def _reflect_pad_adjoint(grad_padded: torch.Tensor, pad: int) -> torch.Tensor:
    """The adjoint of :func:`_reflect_pad`: ``[N, T + 2 pad] -> [N, T]``."""
    t = grad_padded.shape[-1] - 2 * pad
    grad = grad_padded[:, pad:pad + t].clone()
    grad[:, 1:pad + 1] += grad_padded[:, :pad].flip(-1)
    grad[:, t - 1 - pad:t - 1] += grad_padded[:, pad + t:].flip(-1)
    return grad


def _spectral_scale(est_padded: torch.Tensor, ref_padded: torch.Tensor, pad: int, window: torch.Tensor,
                    mel_t: torch.Tensor, log_mel_weight: float, eps: float, grad_padded: torch.Tensor,
                    grad_scale: float) -> torch.Tensor:
    """One scale's loss; adds ``grad_scale`` x its gradient with respect to ``est_padded`` to
    ``grad_padded``.

    ``est_padded``/``ref_padded``/``grad_padded`` ``[N, T + 2 pad]``: the signals reflect-padded by
    ``pad >= w / 2``; ``window [w]``; ``mel_t [w // 2 + 1, n_mels]``. The loss is
    ``log_mel_weight`` x L1 between log-mel spectrograms plus L1 between magnitudes of
    ``torch.stft(x, w, w // 4, window, center=True)`` (reflect padding by ``w / 2``, which is the
    middle of the padding by ``pad``). The gradient is written out by hand (magnitude -> complex
    spectrum -> inverse real FFT -> window -> overlap-add), so no autograd graph is built.
    """
    w, hop = window.shape[0], window.shape[0] // 4
    offset, frames = pad - w // 2, 1 + (est_padded.shape[-1] - 2 * pad) // hop

    def spectrum(padded: torch.Tensor) -> torch.Tensor:  # -> [N, frames, w // 2 + 1] complex
        return torch.fft.rfft(_windowed_frames(padded, offset, hop, frames, window), dim=-1)

    spec_e = spectrum(est_padded)
    mag_e, mag_r, grad_mag, loss = magnitudes_l1(spec_e, spectrum(ref_padded))
    if log_mel_weight:
        mel_e = mag_e @ mel_t  # [N, frames, n_mels]
        log_loss, grad_mel = _log_l1(mel_e, mag_r @ mel_t, eps, log_mel_weight)
        loss = loss + log_loss
        grad_mag.view(-1, grad_mag.shape[-1]).addmm_(grad_mel.view(-1, mel_t.shape[1]), mel_t.t())
    # the real FFT's adjoint is w / 2 x irfft of the spectrum's gradient with its DC and Nyquist
    # bins doubled (spectrum_gradient doubles them)
    grad_frames = torch.fft.irfft(spectrum_gradient(spec_e, mag_e, grad_mag), n=w, dim=-1)  # [N, frames, w]
    _overlap_add_(grad_padded, grad_frames, offset, hop, window, grad_scale * w / 2)
    return loss


class _MultiScaleSpectralFunction(torch.autograd.Function):
    """Mean of :func:`_spectral_scale` over scales; the gradient is computed in the forward pass."""

    @staticmethod
    def forward(ctx, est: torch.Tensor, ref: torch.Tensor, windows: list[torch.Tensor],  # type: ignore[override]
                mels_t: list[torch.Tensor], log_mel_weight: float, eps: float) -> torch.Tensor:
        pad = max(window.shape[0] for window in windows) // 2  # one padding serves every scale
        est_padded, ref_padded = _reflect_pad(est, pad), _reflect_pad(ref, pad)
        grad_padded = torch.zeros_like(est_padded)
        total = sum(_spectral_scale(est_padded, ref_padded, pad, window, mel_t, log_mel_weight, eps, grad_padded,
                                    1.0 / len(windows)) for window, mel_t in zip(windows, mels_t))
        ctx.save_for_backward(_reflect_pad_adjoint(grad_padded, pad))
        return total / len(windows)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None, None


class MultiScaleMelLoss(nn.Module):
    """Mean over windows of ``log_mel_weight`` x L1 between log-mel spectrograms plus L1 between
    magnitudes.

    ``estimate``/``reference`` ``[B, S, T]``; windows default to the paper's 64 ... 2048. The loss is
    differentiable with respect to ``estimate`` only (the reference is data). Its gradient is
    computed in closed form alongside the value (:func:`_spectral_scale`) instead of by autograd
    through ``torch.stft``: most of the training step's 2x speed-up of 2026-11-30 (docs/benchmarks.md).
    ``log_mel_weight=0`` leaves the linear magnitude term only: rendered stems are digitally
    silent between notes, and the log term then punishes any leakage into those gaps so hard
    that a model learns to mute a stem's body (docs/models/slakh4.md).
    """

    def __init__(self, sample_rate_hz: int, windows: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048),
                 n_mels: int = 64, eps: float = 1e-5, log_mel_weight: float = 1.0) -> None:
        super().__init__()
        if any(w % 4 for w in windows):
            raise ValueError(f"spectral loss windows must be multiples of 4 (hop = window / 4), got {windows}")
        self.windows = windows
        self.eps = eps
        self.log_mel_weight = log_mel_weight
        for w in windows:
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)
            self.register_buffer(f"mel_t_{w}", mel_filterbank(sample_rate_hz, w, min(n_mels, w // 4)).t().contiguous(),
                                 persistent=False)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est = estimate.reshape(-1, estimate.shape[-1]).float()
        ref = reference.reshape(-1, reference.shape[-1]).float().detach()
        if est.shape[-1] <= max(self.windows) // 2:
            raise ValueError(f"signals of {est.shape[-1]} samples are too short for the {max(self.windows)}-sample "
                             "window of the spectral loss (reflect padding needs more than half a window)")
        return _MultiScaleSpectralFunction.apply(est, ref, [getattr(self, f"window_{w}") for w in self.windows],
                                                 [getattr(self, f"mel_t_{w}") for w in self.windows],
                                                 self.log_mel_weight, self.eps)


def thresholded_snr_loss(estimate: torch.Tensor, reference: torch.Tensor, max_snr_db: float = 30.0,
                         floor_db: float = -30.0, stem_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean negative SNR (dB) of each stem, soft-capped at ``max_snr_db``: ``estimate``/``reference``
    ``[B, S, T]`` -> a scalar (with ``stem_weights [S]``: each stem's values weighted, then the mean).

    Per example and stem: ``10 log10((|y - y'|^2 + tau |y|^2 + d) / (|y|^2 + d))`` with
    ``tau = 10^(-max_snr_db / 10)`` (Wisdom et al., 2020: no stem is pushed past the cap) and a floor
    ``d`` at ``floor_db`` re the energy of the example's stems' sum, so a stem silent in a segment
    asks for quiet (its error against the mixture's scale) instead of an infinite SNR. Unlike the
    spectral terms it weighs every stem's waveform error on that stem's own scale, as SI-SDR does.
    """
    ref = reference.float()
    err = (estimate.float() - ref).square().sum(-1)  # [B, S]
    energy = ref.square().sum(-1)  # [B, S]
    floor = 10.0 ** (floor_db / 10.0) * ref.sum(1).square().sum(-1, keepdim=True)  # [B, 1]
    tau = 10.0 ** (-max_snr_db / 10.0)
    eps = torch.finfo(torch.float32).tiny
    snr = 10.0 * torch.log10((err + tau * energy + floor + eps) / (energy + floor + eps))  # [B, S]
    return (snr if stem_weights is None else snr * stem_weights).mean()


class LossTerms(NamedTuple):
    """Each term and their weighted ``total`` (scalars)."""

    total: torch.Tensor
    spectral: torch.Tensor
    time_mse: torch.Tensor
    commitment: torch.Tensor
    codebook: torch.Tensor
    snr: torch.Tensor


class SeparationLoss(nn.Module):
    """``spectral_weight * mel + time_weight * MSE + commitment_weight * commit + codebook
    + snr_weight * thresholded_snr_loss`` (``snr_weight`` 0: the paper's losses only).

    ``stem_weights`` (one per stem, default equal) weighs each stem's share of the spectral, MSE and
    SNR terms; they are scaled to mean 1, so equal weights give the unweighted loss exactly."""

    def __init__(self, sample_rate_hz: int, spectral_weight: float = 1.0, time_weight: float = 10.0,
                 commitment_weight: float = 0.25, log_mel_weight: float = 1.0, snr_weight: float = 0.0,
                 stem_weights: tuple[float, ...] | None = None) -> None:
        super().__init__()
        self.spectral = MultiScaleMelLoss(sample_rate_hz, log_mel_weight=log_mel_weight)
        self.spectral_weight = spectral_weight
        self.time_weight = time_weight
        self.commitment_weight = commitment_weight
        self.snr_weight = snr_weight
        weights = None  # [S] scaled to mean 1; None: equal weights
        if stem_weights is not None and len(set(stem_weights)) > 1:
            if min(stem_weights) < 0 or sum(stem_weights) <= 0:
                raise ValueError(f"stem weights must be >= 0 and not all 0, got {stem_weights}")
            weights = torch.tensor(stem_weights, dtype=torch.float32) * (len(stem_weights) / sum(stem_weights))
        self.register_buffer("stem_weights", weights, persistent=False)

    def _spectral(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if self.stem_weights is None:
            return self.spectral(estimate, reference)
        # each stem's rows alone: the loss is a mean over rows, so equal weights would give the same value
        return sum(w * self.spectral(estimate[:, i], reference[:, i])
                   for i, w in enumerate(self.stem_weights)) / len(self.stem_weights)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor, commitment: torch.Tensor,
                codebook: torch.Tensor) -> LossTerms:
        """``estimate``/``reference`` ``[B, S, T]``; ``commitment``/``codebook`` scalars."""
        weights = self.stem_weights
        spectral = self._spectral(estimate, reference)
        if weights is None:
            mse = F.mse_loss(estimate.float(), reference.float())
        else:
            mse = ((estimate.float() - reference.float()).square().mean((0, 2)) * weights).mean()
        snr = thresholded_snr_loss(estimate, reference, stem_weights=weights) if self.snr_weight else mse.new_zeros(())
        total = (self.spectral_weight * spectral + self.time_weight * mse
                 + self.commitment_weight * commitment + codebook + self.snr_weight * snr)
        if not math.isfinite(float(total.detach())):
            raise FloatingPointError("the training loss is not finite; lower the learning rate or check the data")
        return LossTerms(total, spectral, mse, commitment, codebook, snr)
