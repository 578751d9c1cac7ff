"""Building blocks of the separator: per-frame normalisation, residual units, levels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .streaming import CausalConv1d, CausalConvTranspose1d, pointwise


class ChannelNorm(nn.Module):
    """Layer norm over channels at each time step (per frame, never across time): ``[B, C, T]``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class ResidualUnit(nn.Module):
    """``x + conv1x1(elu(dilated causal conv(elu(norm(x)))))``: ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, causal: bool) -> None:
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.conv = CausalConv1d(channels, channels, kernel_size, dilation=dilation, causal=causal)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + pointwise(self.out, F.elu(self.conv(F.elu(self.norm(x)))))


class EncoderLevel(nn.Module):
    """Strided causal conv then residual units: ``[B, C_in, T] -> [B, C_out, T / stride]``.

    With ``basis_channels`` (more than ``out_channels``) the strided conv emits that many
    channels (``[B, basis_channels, T / stride]``: the first level's basis, which the mask head
    gates) and a 1x1 conv, ``project``, maps them to ``out_channels`` for the residual units.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_factor: int,
                 dilations: tuple[int, ...], residual_kernel: int, causal: bool,
                 basis_channels: int | None = None) -> None:
        super().__init__()
        basis = basis_channels or out_channels
        self.down = CausalConv1d(in_channels, basis, kernel_factor * stride, stride, causal=causal)
        self.project = CausalConv1d(basis, out_channels, 1, causal=causal) if basis != out_channels else None
        self.units = nn.Sequential(*[ResidualUnit(out_channels, residual_kernel, d, causal)
                                     for d in dilations])

    def features(self, basis: torch.Tensor) -> torch.Tensor:
        """The strided conv's output ``[B, basis_channels, T]`` -> the level's ``[B, C_out, T]``."""
        return self.units(basis if self.project is None else self.project(basis))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.down(x))


class DecoderLevel(nn.Module):
    """Causal transposed conv, add the encoder's skip, residual units.

    ``[B, C_in, T] + skip [B, C_out, T * stride] -> [B, C_out, T * stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_factor: int,
                 dilations: tuple[int, ...], residual_kernel: int, causal: bool) -> None:
        super().__init__()
        self.up = CausalConvTranspose1d(in_channels, out_channels, kernel_factor * stride, stride,
                                        causal=causal)
        self.units = nn.Sequential(*[ResidualUnit(out_channels, residual_kernel, d, causal)
                                     for d in dilations])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.units(self.up(F.elu(x)) + skip)


class CausalConvStack(nn.Module):
    """The ``conv`` temporal model: residual units with dilations 1, 2, 4, ... ``[B, C, T]``."""

    def __init__(self, channels: int, layers: int, kernel_size: int) -> None:
        super().__init__()
        self.units = nn.Sequential(*[ResidualUnit(channels, kernel_size, 2 ** i, True)
                                     for i in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.units(x)
