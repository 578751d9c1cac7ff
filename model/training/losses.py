"""Training losses: multi-scale mel/STFT loss, time-domain MSE, thresholded SNR, and their weighted sum."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


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


class MultiScaleMelLoss(nn.Module):
    """Mean over windows of ``log_mel_weight`` x L1 between log-mel spectrograms plus L1 between
    magnitudes.

    ``estimate``/``reference`` ``[B, S, T]``; windows default to the paper's 64 ... 2048.
    ``log_mel_weight=0`` leaves the linear magnitude term only: rendered stems are digitally
    silent between notes, and the log term then punishes any leakage into those gaps so hard
    that a model learns to mute a stem's body (docs/models/slakh4.md).
    """

    def __init__(self, sample_rate_hz: int, windows: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048),
                 n_mels: int = 64, eps: float = 1e-5, log_mel_weight: float = 1.0) -> None:
        super().__init__()
        self.windows = windows
        self.eps = eps
        self.log_mel_weight = log_mel_weight
        for w in windows:
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)
            self.register_buffer(f"mel_{w}", mel_filterbank(sample_rate_hz, w, min(n_mels, w // 4)),
                                 persistent=False)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est = estimate.reshape(-1, estimate.shape[-1]).float()
        ref = reference.reshape(-1, reference.shape[-1]).float()
        total = est.new_zeros(())
        for w in self.windows:
            window = getattr(self, f"window_{w}")
            mel = getattr(self, f"mel_{w}")
            spec_e = torch.stft(est, w, w // 4, window=window, return_complex=True).abs()
            spec_r = torch.stft(ref, w, w // 4, window=window, return_complex=True).abs()
            if self.log_mel_weight:
                mel_e, mel_r = mel @ spec_e, mel @ spec_r
                total = total + self.log_mel_weight * F.l1_loss(torch.log(mel_e + self.eps),
                                                                torch.log(mel_r + self.eps))
            total = total + F.l1_loss(spec_e, spec_r)
        return total / len(self.windows)


def thresholded_snr_loss(estimate: torch.Tensor, reference: torch.Tensor, max_snr_db: float = 30.0,
                         floor_db: float = -30.0) -> torch.Tensor:
    """Mean negative SNR (dB) of each stem, soft-capped at ``max_snr_db``: ``estimate``/``reference``
    ``[B, S, T]`` -> a scalar.

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
    return (10.0 * torch.log10((err + tau * energy + floor + eps) / (energy + floor + eps))).mean()


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
    + snr_weight * thresholded_snr_loss`` (``snr_weight`` 0: the paper's losses only)."""

    def __init__(self, sample_rate_hz: int, spectral_weight: float = 1.0, time_weight: float = 10.0,
                 commitment_weight: float = 0.25, log_mel_weight: float = 1.0, snr_weight: float = 0.0) -> None:
        super().__init__()
        self.spectral = MultiScaleMelLoss(sample_rate_hz, log_mel_weight=log_mel_weight)
        self.spectral_weight = spectral_weight
        self.time_weight = time_weight
        self.commitment_weight = commitment_weight
        self.snr_weight = snr_weight

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor, commitment: torch.Tensor,
                codebook: torch.Tensor) -> LossTerms:
        spectral = self.spectral(estimate, reference)
        mse = F.mse_loss(estimate.float(), reference.float())
        snr = thresholded_snr_loss(estimate, reference) if self.snr_weight else mse.new_zeros(())
        total = (self.spectral_weight * spectral + self.time_weight * mse
                 + self.commitment_weight * commitment + codebook + self.snr_weight * snr)
        if not math.isfinite(float(total.detach())):
            raise FloatingPointError("the training loss is not finite; lower the learning rate or check the data")
        return LossTerms(total, spectral, mse, commitment, codebook, snr)
