"""The causal RQ-VAE separator network (after arXiv 2408.07020, made causal)."""
from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CausalConvStack, DecoderLevel, EncoderLevel
from .config import LEVEL_EPS, SeparatorConfig
from .rvq import ResidualVectorQuantizer
from .streaming import CausalConv1d, CausalConvTranspose1d, SampleDelay, StreamingLSTM, streaming


def windowed_dft_basis(kernel: int, channels: int) -> torch.Tensor:
    """``[channels, kernel]`` rows of an orthonormal real DFT basis times a sqrt-Hann window.

    Rows repeat (scaled by ``1/sqrt(repeats)``) when ``channels > kernel``, so with a hop of
    ``kernel / 2`` analysis followed by the transposed synthesis reconstructs exactly. Row order:
    DC, then cosine and sine of each frequency ``k / kernel`` cycles per sample, ``k = 1, 2, ...``,
    then (even ``kernel``) the Nyquist row.
    """
    n = torch.arange(kernel, dtype=torch.float64)
    rows = [torch.full((kernel,), 1.0 / math.sqrt(kernel), dtype=torch.float64)]
    for k in range(1, (kernel + 1) // 2):
        rows.append(math.sqrt(2.0 / kernel) * torch.cos(2 * math.pi * k * n / kernel))
        rows.append(math.sqrt(2.0 / kernel) * torch.sin(2 * math.pi * k * n / kernel))
    if kernel % 2 == 0:
        rows.append(torch.cos(math.pi * n) / math.sqrt(kernel))
    basis = torch.stack(rows) * torch.sqrt(torch.hann_window(kernel, periodic=True, dtype=torch.float64))
    repeats = -(-channels // kernel)
    basis = basis.repeat(repeats, 1)[:channels] / math.sqrt(repeats)
    return basis.float()


class SeparatorOutput(NamedTuple):
    """``stems [B, S, T]``, ``codes [B, n_q, T / frame]`` and the quantizer's loss terms."""

    stems: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


def frame_level(coefficients: torch.Tensor, steps_per_frame: int) -> torch.Tensor:
    """The mixture's level per frame, held over its basis steps: ``coefficients [B, C0, T0]``
    (``T0`` a multiple of ``steps_per_frame``) -> ``[B, 1, T0]``, ``e / sqrt(e + eps)`` of the
    mean square ``e`` of the frame's coefficients: 0 exactly for a silent frame, the
    coefficients' RMS otherwise. A streaming frame holds all of it, so it adds no latency."""
    b, _, t0 = coefficients.shape
    energy = coefficients.square().reshape(b, -1, t0 // steps_per_frame, steps_per_frame).mean(dim=(1, 3))
    level = energy * torch.rsqrt(energy + LEVEL_EPS)  # [B, frames]
    return level.repeat_interleave(steps_per_frame, dim=1).unsqueeze(1)


class RQVAESeparator(nn.Module):
    """Mono mixture ``[B, 1, T]`` -> stems ``[B, S, T]`` (``T`` a multiple of the frame size),
    lagging the input by ``config.output_delay_samples``.

    Encoder: one :class:`EncoderLevel` per stride (strided causal conv + residual units).
    Latent: a causal temporal model, then the residual vector quantizer. Decoder: causal
    transposed convs mirroring the encoder, each adding the matching encoder level's output
    (U-Net skips). Output head: with ``output="mask"``, one sigmoid mask per stem over the
    first level's learned basis (the first strided conv's output, without its bias when
    ``config.bias_free_masking``), each masked basis decoded by its stem's bias-free synthesis
    transposed conv (one grouped conv), so zeros in give exact zeros out; with ``output="waveform"``, a transposed conv emitting one
    waveform per stem. With ``config.mixture_consistency`` the stems then share out what
    they miss of the mixture (delayed by ``output_delay_samples``) equally, so they sum to it.
    """

    def __init__(self, config: SeparatorConfig) -> None:
        super().__init__()
        self.config = config
        c, causal = config, config.causal
        ins = (1,) + c.channels[:-1]
        # the first level's kernel is the analysis basis: it may be longer than the synthesis
        factors = (c.analysis_kernel_factor or c.kernel_factor,) + (c.kernel_factor,) * (len(c.strides) - 1)
        bases = (c.basis_channel_count,) + (None,) * (len(c.strides) - 1)
        self.encoder = nn.ModuleList(
            EncoderLevel(i, o, s, f, c.residual_dilations, c.residual_kernel, causal, b)
            for i, o, s, f, b in zip(ins, c.channels, c.strides, factors, bases))
        top = c.channels[-1]
        if c.temporal in ("lstm", "bilstm"):
            self.temporal = StreamingLSTM(top, c.temporal_layers, bidirectional=c.temporal == "bilstm")
        elif c.temporal == "conv":
            self.temporal = CausalConvStack(top, c.temporal_layers, c.residual_kernel)
        else:
            self.temporal = nn.Identity()
        self.quantizer = ResidualVectorQuantizer(top, c.n_q, c.codebook_size, c.codebook_dim,
                                                 c.quantizer_dropout, c.dead_code_threshold)
        # decoder levels run from the top down to level 1; level 0's skip is the output head's
        self.decoder = nn.ModuleList(
            DecoderLevel(c.channels[k], c.channels[k - 1], c.strides[k], c.kernel_factor,
                         c.residual_dilations, c.residual_kernel, causal)
            for k in range(len(c.strides) - 1, 0, -1))
        n_stems, base, s0 = len(c.stems), c.basis_channel_count, c.strides[0]
        if c.output == "mask":
            self.mask = CausalConv1d(c.channels[0], n_stems * base, 1, causal=causal)
            # bias_free_masking: no synthesis bias either, so masked zeros decode to exact zeros
            self.synthesis = CausalConvTranspose1d(n_stems * base, n_stems, c.kernel_factor * s0, s0,
                                                   causal=causal, groups=n_stems, bias=not c.bias_free_masking)
            # level_generator: per-stem vectors over the basis, scaled by the frame's level
            self.generator = nn.Parameter(torch.zeros(n_stems, base)) if c.level_generator else None
        else:
            self.head = CausalConvTranspose1d(base, n_stems, c.kernel_factor * s0, s0, causal=causal)
        self.mixture_delay = SampleDelay(1, c.output_delay_samples) if c.mixture_consistency else None
        self._init_filterbank()

    @torch.no_grad()
    def _init_filterbank(self) -> None:
        """Start the first level as a tight frame (windowed real DFT) and, in mask mode, each
        stem's synthesis as its inverse with near-constant masks of 0.5, so an untrained
        model outputs half the mixture (delayed by ``output_delay_samples``) in every stem:
        the mixture's own score, from which training improves, instead of noise. A longer
        analysis kernel (``analysis_kernel_factor``) starts as the same basis on its newest
        taps (a causal conv's last ones) and zeros on the older ones."""
        analysis = self.encoder[0].down.conv
        channels = analysis.weight.shape[0]
        kernel = self.config.kernel_factor * self.config.strides[0]  # the synthesis kernel's length
        basis = windowed_dft_basis(kernel, channels)
        analysis.weight.zero_()
        analysis.weight[:, 0, -kernel:] = basis
        analysis.bias.zero_()
        if self.config.output == "mask":
            self.synthesis.conv.weight.copy_(basis.repeat(len(self.config.stems), 1).unsqueeze(1))
            if self.synthesis.conv.bias is not None:
                self.synthesis.conv.bias.zero_()
            self.mask.conv.weight.mul_(0.01)
            self.mask.conv.bias.zero_()

    @property
    def frame_size(self) -> int:
        return self.config.frame_size

    def streaming(self, batch_size: int,
                  device: str | torch.device | None = None) -> contextlib.AbstractContextManager[nn.Module]:
        """``with net.streaming(batch_size): net(frames)...``: streaming mode (eval, zero states
        for ``batch_size`` streams, on ``device`` when given) inside the block; on exit the network
        is as it was found (training flags, states, device). See :func:`model.streaming.streaming`."""
        return streaming(self, batch_size, device)

    def forward(self, mixture: torch.Tensor, n_q: int | None = None) -> SeparatorOutput:
        """Separate ``mixture [B, 1, T]`` into ``[B, S, T]`` using the first ``n_q`` quantizers."""
        if mixture.dim() != 3 or mixture.shape[1] != 1:
            raise ValueError(f"expected a mono batch [B, 1, T], got shape {tuple(mixture.shape)}")
        if mixture.shape[-1] % self.frame_size:
            raise ValueError(f"length {mixture.shape[-1]} is not a multiple of the frame size {self.frame_size}")
        basis = self.encoder[0].down(mixture)
        skips = [self.encoder[0].features(basis)]
        for level in self.encoder[1:]:
            skips.append(level(skips[-1]))
        latent = self.temporal(skips[-1])
        q = self.quantizer(latent, n_q)
        x = q.quantized
        for level, skip in zip(self.decoder, reversed(skips[:-1])):
            x = level(x, skip)
        b, n_stems = mixture.shape[0], len(self.config.stems)
        if self.config.output == "mask":
            masks = torch.sigmoid(self.mask(F.elu(x)))  # [B, S * C0, T0]
            coefficients = self.mask_coefficients(basis)
            per_stem = coefficients.unsqueeze(1)  # [B, 1, C0, T0]
            if self.generator is not None:
                level = frame_level(coefficients, self.config.basis_steps_per_frame).unsqueeze(1)  # [B, 1, 1, T0]
                per_stem = per_stem + self.generator.view(1, n_stems, -1, 1) * level
            stems = self.synthesize(masks.view(b, n_stems, basis.shape[1], -1) * per_stem, mixture)
        else:
            stems = self.consistent(self.head(F.elu(x)), mixture)
        return SeparatorOutput(stems, q.codes, q.commitment_loss, q.codebook_loss)

    def mask_coefficients(self, basis: torch.Tensor) -> torch.Tensor:
        """What the masks gate: the first level's output ``basis [B, C0, T0]``, without its
        analysis bias when ``config.bias_free_masking`` (so digital silence in gives exact zeros
        out) -> ``[B, C0, T0]``."""
        if not self.config.bias_free_masking:
            return basis
        return basis - self.encoder[0].down.conv.bias.view(1, -1, 1)

    def synthesize(self, masked: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """Masked coefficients ``[B, S, C0, T0]`` -> stems ``[B, S, T]`` (each stem's synthesis,
        then mixture consistency against ``mixture [B, 1, T]``). Mask models only."""
        return self.consistent(self.synthesis(masked.flatten(1, 2)), mixture)

    def consistent(self, stems: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """With ``config.mixture_consistency``, ``stems [B, S, T]`` share out equally what they
        miss of ``mixture [B, 1, T]`` (delayed by ``output_delay_samples``); else unchanged."""
        if self.mixture_delay is None:
            return stems
        return stems + (self.mixture_delay(mixture) - stems.sum(1, keepdim=True)) / stems.shape[1]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
