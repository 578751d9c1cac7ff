"""``NumbaFrameStep``: the separator's streaming frame step as numba CPU kernels.

Eager PyTorch spends a frame step of the default model (1.2 M multiply-adds) on the set-up
of about 400 tiny ops; these kernels run the same arithmetic over preallocated numpy
arrays, without dispatch, and equal the torch streaming path within float32 rounding.

Layout: every activation is time-major per stream, ``[N, T, C]`` (``N`` independent mono
streams, the torch model's batch), so the innermost loops run over contiguous output
channels and vectorise without reordering any sum (``fastmath`` stays off). Weights are
copied once, transposed to match (``[K, C_in, C_out]`` for convolutions).

State: each layer owns its buffers, allocated by ``bind(channels)`` and updated in place:
- a causal conv's ``window [N, P + T_in, C_in]``: rows ``:P`` carry the last ``P`` input
  rows of the previous step (its state), rows ``P:`` take this step's input;
- a transposed conv's ``overlap [N, tail + T_out, C_out]``: rows ``:tail`` carry what earlier
  steps owe this one (bias excluded, ``tail = k - stride``), the rest is overlap-added anew;
- the LSTM's ``hidden`` and ``cell [layers, N, H]``.
Each layer also owns its output array and work buffers, so ``step`` allocates no arrays.
"""
from __future__ import annotations

import functools
import math
import types
from typing import NamedTuple

import numba
import numpy as np
import torch

from .blocks import DecoderLevel, EncoderLevel, ResidualUnit
from .rvq import ResidualVectorQuantizer
from .separator import RQVAESeparator
from .streaming import CausalConv1d, CausalConvTranspose1d, StreamingLSTM

_jit = numba.njit(cache=True, fastmath=False, nogil=True)


# ---------------------------------------------------------------------- kernels
@_jit
def _elu(v):
    return v if v > 0 else np.expm1(v)


@_jit
def _sigmoid(v):
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))


@_jit
def _keep_context(window, frames_in):
    """Move the last ``P`` rows of ``window [N, P + frames_in, C]`` to its first ``P``."""
    n_streams, rows, channels = window.shape
    for n in range(n_streams):
        for r in range(rows - frames_in):  # forward copy: the source row is always later
            for c in range(channels):
                window[n, r, c] = window[n, frames_in + r, c]


@_jit
def _conv_window(window, weight, bias, stride, dilation, out):
    """Valid conv of ``window [N, P + T_in, C_in]`` by ``weight [K, C_in, C_out]`` plus
    ``bias [C_out]`` into ``out [N, T_in / stride, C_out]``; then keep the window's context."""
    n_streams = window.shape[0]
    k, c_in, c_out = weight.shape
    t_out = out.shape[1]
    for n in range(n_streams):
        for t in range(t_out):
            acc = out[n, t]
            for o in range(c_out):
                acc[o] = bias[o]
            for j in range(k):
                src = window[n, t * stride + j * dilation]
                for i in range(c_in):
                    v = src[i]
                    w = weight[j, i]
                    for o in range(c_out):
                        acc[o] += w[o] * v
    _keep_context(window, t_out * stride)


@_jit
def _causal_conv(x, window, weight, bias, stride, dilation, out):
    """Streaming causal conv: ``x [N, T_in, C_in]`` -> ``out [N, T_in / stride, C_out]``."""
    n_streams, t_in, c_in = x.shape
    p = window.shape[1] - t_in
    for n in range(n_streams):
        for t in range(t_in):
            for i in range(c_in):
                window[n, p + t, i] = x[n, t, i]
    _conv_window(window, weight, bias, stride, dilation, out)


@_jit
def _residual_unit(x, norm_weight, norm_bias, eps, window, conv_weight, conv_bias, dilation,
                   hidden, out_weight, out_bias, out):
    """``out = x + 1x1(elu(causal conv(elu(channel norm(x)))))``, all ``[N, T, C]``.

    ``hidden [N, T, C]`` is work; ``out_weight [C, C]`` is ``[C_in, C_out]``.
    """
    n_streams, t_len, channels = x.shape
    p = window.shape[1] - t_len
    for n in range(n_streams):
        for t in range(t_len):
            row = x[n, t]
            mean = 0.0
            for c in range(channels):
                mean += row[c]
            mean /= channels
            var = 0.0
            for c in range(channels):
                d = row[c] - mean
                var += d * d
            var /= channels
            inv = np.float32(1.0 / math.sqrt(var + eps))
            mean32 = np.float32(mean)
            dst = window[n, p + t]
            for c in range(channels):
                dst[c] = _elu((row[c] - mean32) * inv * norm_weight[c] + norm_bias[c])
    _conv_window(window, conv_weight, conv_bias, 1, dilation, hidden)
    for n in range(n_streams):
        for t in range(t_len):
            h = hidden[n, t]
            acc = out[n, t]
            for o in range(channels):
                acc[o] = out_bias[o]
            for i in range(channels):
                v = _elu(h[i])
                w = out_weight[i]
                for o in range(channels):
                    acc[o] += w[o] * v
            row = x[n, t]
            for o in range(channels):
                acc[o] += row[o]


@_jit
def _lstm(x, w_ih, w_hh, bias, hidden, cell, gates, out):
    """``out = x + lstm(x)``: ``x, out [N, T, H]``; ``w_ih, w_hh [L, H, 4H]`` (transposed),
    ``bias [L, 4H]`` (both biases), state ``hidden, cell [L, N, H]``, work ``gates [4H]``.
    Gates in torch's order: input, forget, cell, output."""
    n_streams, t_len, h_size = x.shape
    layers = w_ih.shape[0]
    for n in range(n_streams):
        for t in range(t_len):
            for layer in range(layers):
                inp = x[n, t] if layer == 0 else hidden[layer - 1, n]
                h = hidden[layer, n]
                c = cell[layer, n]
                for g in range(4 * h_size):
                    gates[g] = bias[layer, g]
                for i in range(h_size):
                    v = inp[i]
                    w = w_ih[layer, i]
                    for g in range(4 * h_size):
                        gates[g] += w[g] * v
                for i in range(h_size):
                    v = h[i]
                    w = w_hh[layer, i]
                    for g in range(4 * h_size):
                        gates[g] += w[g] * v
                for j in range(h_size):
                    c_new = (_sigmoid(gates[h_size + j]) * c[j]
                             + _sigmoid(gates[j]) * np.tanh(gates[2 * h_size + j]))
                    c[j] = c_new
                    h[j] = _sigmoid(gates[3 * h_size + j]) * np.tanh(c_new)
            top = hidden[layers - 1, n]
            for j in range(h_size):
                out[n, t, j] = x[n, t, j] + top[j]


@_jit
def _quantize(x, in_weight, in_bias, codebooks, norms, out_weight, out_bias, residual, total, dots, out):
    """Residual vector quantization of ``x [N, T, dim]`` into ``out [N, T, dim]``.

    ``in_weight [dim, D]``, the used ``codebooks [n_q, D, K]`` (transposed), their ``norms
    [n_q, K]`` (``|code|^2``), ``out_weight [D, dim]``; work ``residual, total [N, D]``, ``dots [N, K]``.
    The nearest code minimises ``|code|^2 - 2 residual . code`` (first one on a tie), as torch.
    Streams share each pass over a codebook (the largest weights, read once per frame).
    """
    n_streams, t_len, dim = x.shape
    n_q, d_size, k_size = codebooks.shape
    for t in range(t_len):
        for n in range(n_streams):
            r = residual[n]
            for d in range(d_size):
                r[d] = in_bias[d]
                total[n, d] = 0.0
            for i in range(dim):
                v = x[n, t, i]
                w = in_weight[i]
                for d in range(d_size):
                    r[d] += w[d] * v
        for q in range(n_q):
            book = codebooks[q]
            for n in range(n_streams):
                for k in range(k_size):
                    dots[n, k] = 0.0
            for d in range(d_size):
                code_d = book[d]
                for n in range(n_streams):
                    v = residual[n, d]
                    acc = dots[n]
                    for k in range(k_size):
                        acc[k] += code_d[k] * v
            for n in range(n_streams):
                best = 0
                best_dist = norms[q, 0] - np.float32(2.0) * dots[n, 0]
                for k in range(1, k_size):
                    dist = norms[q, k] - np.float32(2.0) * dots[n, k]
                    if dist < best_dist:
                        best, best_dist = k, dist
                for d in range(d_size):
                    chosen = book[d, best]
                    total[n, d] += chosen
                    residual[n, d] -= chosen
        for n in range(n_streams):
            acc = out[n, t]
            for o in range(dim):
                acc[o] = out_bias[o]
            for d in range(d_size):
                v = total[n, d]
                w = out_weight[d]
                for o in range(dim):
                    acc[o] += w[o] * v


@_jit
def _elu_conv_transpose(x, weight, bias, stride, overlap, skip, out):
    """Streaming transposed conv of ``elu(x [N, T, C_in])`` by ``weight [C_in, K, C_out]``:
    ``out [N, T * stride, C_out]`` = overlap-add + ``bias`` (+ ``skip``, same shape, if given);
    ``overlap [N, K - stride + T * stride, C_out]`` carries the tail to the next step."""
    n_streams, t_len, c_in = x.shape
    k, c_out = weight.shape[1], weight.shape[2]
    n_out = t_len * stride
    tail = k - stride
    for n in range(n_streams):
        acc = overlap[n]
        for r in range(tail, tail + n_out):
            for o in range(c_out):
                acc[r, o] = 0.0
        for t in range(t_len):
            for i in range(c_in):
                v = _elu(x[n, t, i])
                for j in range(k):
                    w = weight[i, j]
                    dst = acc[t * stride + j]
                    for o in range(c_out):
                        dst[o] += w[o] * v
        for r in range(n_out):
            for o in range(c_out):
                out[n, r, o] = acc[r, o] + bias[o]
                if skip is not None:
                    out[n, r, o] += skip[n, r, o]
    _keep_context(overlap, n_out)


@_jit
def _masked_synthesis(x, mask_weight, mask_bias, basis, basis_bias, synth_weight, synth_bias, stride,
                      masks, overlap, stems):
    """Mask head: ``sigmoid(1x1(elu(x [N, T, C0])))`` masks the coefficients ``basis [N, T, C0]``
    minus ``basis_bias [C0]`` once per stem, and each stem's grouped transposed conv decodes it
    into ``stems [S, N, T * stride]``.

    ``mask_weight [C0, S * C0]``, ``synth_weight [S, C0, K]``, ``synth_bias [S]``; work
    ``masks [S * C0]``; state ``overlap [N, S, K - stride + T * stride]`` (stem-major).
    """
    n_streams, t_len, c0 = x.shape
    n_stems, _, k = synth_weight.shape
    n_out = t_len * stride
    tail = k - stride
    for n in range(n_streams):
        for s in range(n_stems):
            for r in range(tail, tail + n_out):
                overlap[n, s, r] = 0.0
        for t in range(t_len):
            for m in range(n_stems * c0):
                masks[m] = mask_bias[m]
            for i in range(c0):
                v = _elu(x[n, t, i])
                w = mask_weight[i]
                for m in range(n_stems * c0):
                    masks[m] += w[m] * v
            for s in range(n_stems):
                dst = overlap[n, s]
                for c in range(c0):
                    a = _sigmoid(masks[s * c0 + c]) * (basis[n, t, c] - basis_bias[c])
                    w = synth_weight[s, c]
                    for j in range(k):
                        dst[t * stride + j] += w[j] * a
        for s in range(n_stems):
            for r in range(n_out):
                stems[s, n, r] = overlap[n, s, r] + synth_bias[s]
            for r in range(tail):
                overlap[n, s, r] = overlap[n, s, n_out + r]


@_jit
def _mixture_consistency(frame, history, stems):
    """Add to each of the ``S`` stems ``[S, N, F]`` an equal share of the mixture delayed by
    ``D`` samples minus the stems' sum. State ``history [N, D + F]``: columns ``:D`` carry the
    last ``D`` input samples; ``frame [N, F]`` is copied in after them."""
    n_stems, n_streams, n_out = stems.shape
    delay = history.shape[1] - n_out
    for n in range(n_streams):
        for t in range(n_out):
            history[n, delay + t] = frame[n, t]
        for t in range(n_out):
            total = stems[0, n, t]
            for s in range(1, n_stems):
                total += stems[s, n, t]
            share = (history[n, t] - total) / np.float32(n_stems)
            for s in range(n_stems):
                stems[s, n, t] += share
        for t in range(delay):
            history[n, t] = history[n, n_out + t]


# ---------------------------------------------------------------------- layers
def _copy(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous float32 numpy copy of ``tensor`` (never memory shared with torch)."""
    return np.array(tensor.detach().cpu().numpy(), dtype=np.float32, order="C", copy=True)


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


class _Kernels(NamedTuple):
    """The kernels a layer calls from Python, compiled either to release the GIL or to keep it."""

    causal_conv: object
    residual_unit: object
    lstm: object
    quantize: object
    elu_conv_transpose: object
    masked_synthesis: object
    mixture_consistency: object


def _keeping_gil(kernel):
    """``kernel`` compiled to keep the GIL. A copy under its own qualified name, so numba caches
    it apart from the GIL-releasing original (numba's cache index does not tell the two apart)."""
    f = kernel.py_func
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_gil", f.__defaults__)
    copy.__qualname__ = f.__qualname__ + "_gil"
    return numba.njit(cache=True, fastmath=False, nogil=False)(copy)


@functools.cache
def kernels(release_gil: bool) -> _Kernels:
    """The layer kernels. ``release_gil=True`` suits a worker thread (the audio callback's thread
    may run while a kernel does); ``False`` suits the audio callback itself, which holds the GIL
    anyway: a kernel that releases it must win it back on return, which costs up to a switch
    interval when another Python thread is busy."""
    plain = _Kernels(_causal_conv, _residual_unit, _lstm, _quantize, _elu_conv_transpose, _masked_synthesis,
                     _mixture_consistency)
    return plain if release_gil else _Kernels(*(_keeping_gil(k) for k in plain))


class _Layer:
    """Base of the layer wrappers: ``k`` holds the kernels they call (GIL-releasing by default)."""

    k: _Kernels

    def use_kernels(self, k: _Kernels) -> None:
        self.k = k


class _CausalConv(_Layer):
    """A :class:`CausalConv1d`: ``[N, T_in, C_in] -> [N, T_in / stride, C_out]``."""

    def __init__(self, conv: CausalConv1d, frames_in: int) -> None:
        self.weight = _copy(conv.conv.weight.permute(2, 1, 0))  # [K, C_in, C_out]
        self.bias = _copy(conv.conv.bias)
        self.stride, self.dilation = conv.stride, conv.conv.dilation[0]
        self.frames_in, self.context_rows = frames_in, conv.context_samples
        self.frames_out = frames_in // conv.stride

    def bind(self, channels: int) -> None:
        _, c_in, c_out = self.weight.shape
        self.window = _zeros(channels, self.context_rows + self.frames_in, c_in)
        self.out = _zeros(channels, self.frames_out, c_out)

    def reset(self) -> None:
        self.window.fill(0.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.k.causal_conv(x, self.window, self.weight, self.bias, self.stride, self.dilation, self.out)
        return self.out


class _ResidualUnit(_Layer):
    """A :class:`ResidualUnit`: ``[N, T, C] -> [N, T, C]``."""

    def __init__(self, unit: ResidualUnit, frames: int) -> None:
        self.conv = _CausalConv(unit.conv, frames)
        self.norm_weight, self.norm_bias = _copy(unit.norm.weight.flatten()), _copy(unit.norm.bias.flatten())
        self.eps = float(unit.norm.eps)
        self.out_weight = _copy(unit.out.weight[:, :, 0].t())  # [C_in, C_out]
        self.out_bias = _copy(unit.out.bias)

    def bind(self, channels: int) -> None:
        self.conv.bind(channels)
        self.out = np.zeros_like(self.conv.out)

    def reset(self) -> None:
        self.conv.reset()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c = self.conv
        self.k.residual_unit(x, self.norm_weight, self.norm_bias, self.eps, c.window, c.weight, c.bias,
                       c.dilation, c.out, self.out_weight, self.out_bias, self.out)
        return self.out


class _LSTM(_Layer):
    """A causal :class:`StreamingLSTM` (with its residual connection): ``[N, T, H] -> [N, T, H]``."""

    def __init__(self, lstm: StreamingLSTM, frames: int) -> None:
        net = lstm.lstm
        layers = range(net.num_layers)
        self.w_ih = np.stack([_copy(getattr(net, f"weight_ih_l{k}").t()) for k in layers])  # [L, H, 4H]
        self.w_hh = np.stack([_copy(getattr(net, f"weight_hh_l{k}").t()) for k in layers])
        self.bias = np.stack([_copy(getattr(net, f"bias_ih_l{k}") + getattr(net, f"bias_hh_l{k}"))
                              for k in layers])
        self.frames = frames

    def bind(self, channels: int) -> None:
        layers, h_size, _ = self.w_hh.shape
        self.hidden, self.cell = _zeros(layers, channels, h_size), _zeros(layers, channels, h_size)
        self.gates = _zeros(4 * h_size)
        self.out = _zeros(channels, self.frames, h_size)

    def reset(self) -> None:
        self.hidden.fill(0.0)
        self.cell.fill(0.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.k.lstm(x, self.w_ih, self.w_hh, self.bias, self.hidden, self.cell, self.gates, self.out)
        return self.out


class _Quantizer(_Layer):
    """The inference path of a :class:`ResidualVectorQuantizer` with ``n_q`` quantizers (stateless)."""

    def __init__(self, rvq: ResidualVectorQuantizer, n_q: int, frames: int) -> None:
        self.frames = frames
        self.in_weight = _copy(rvq.project_in.weight[:, :, 0].t())  # [dim, D]
        self.in_bias = _copy(rvq.project_in.bias)
        self.codebooks = _copy(rvq.codebooks[:n_q].transpose(1, 2))  # [n_q, D, K]
        self.norms = _copy(rvq._code_norms()[:n_q])  # the very norms torch compares with
        self.out_weight = _copy(rvq.project_out.weight[:, :, 0].t())  # [D, dim]
        self.out_bias = _copy(rvq.project_out.bias)

    def bind(self, channels: int) -> None:
        dim, d_size = self.in_weight.shape
        self.residual, self.total = _zeros(channels, d_size), _zeros(channels, d_size)
        self.dots = _zeros(channels, self.codebooks.shape[2])
        self.out = _zeros(channels, self.frames, dim)

    def reset(self) -> None:
        pass

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.k.quantize(x, self.in_weight, self.in_bias, self.codebooks, self.norms, self.out_weight, self.out_bias,
                  self.residual, self.total, self.dots, self.out)
        return self.out


class _ConvTranspose(_Layer):
    """An ungrouped :class:`CausalConvTranspose1d` of ``elu(x)``, plus an optional skip:
    ``[N, T, C_in] -> [N, T * stride, C_out]``."""

    def __init__(self, conv: CausalConvTranspose1d, frames_in: int) -> None:
        self.weight = _copy(conv.conv.weight.transpose(1, 2))  # [C_in, K, C_out]
        self.bias = _copy(conv.conv.bias)
        self.stride, self.tail_rows = conv.stride, conv.tail_samples
        self.frames_out = frames_in * conv.stride

    def bind(self, channels: int) -> None:
        c_out = self.weight.shape[2]
        self.overlap = _zeros(channels, self.tail_rows + self.frames_out, c_out)
        self.out = _zeros(channels, self.frames_out, c_out)

    def reset(self) -> None:
        self.overlap.fill(0.0)

    def __call__(self, x: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        self.k.elu_conv_transpose(x, self.weight, self.bias, self.stride, self.overlap, skip, self.out)
        return self.out


class _Level:
    """An encoder level (strided conv) or a decoder level (transposed conv of elu, plus the
    encoder's skip), then its residual units."""

    def __init__(self, first: _CausalConv | _ConvTranspose, units: list[_ResidualUnit]) -> None:
        self.first, self.units = first, units

    def bind(self, channels: int) -> None:
        for layer in (self.first, *self.units):
            layer.bind(channels)

    def reset(self) -> None:
        for layer in (self.first, *self.units):
            layer.reset()

    def use_kernels(self, k: _Kernels) -> None:
        for layer in (self.first, *self.units):
            layer.use_kernels(k)

    @property
    def out(self) -> np.ndarray:
        return self.units[-1].out if self.units else self.first.out

    def __call__(self, x: np.ndarray, *skip: np.ndarray) -> np.ndarray:
        x = self.first(x, *skip)
        for unit in self.units:
            x = unit(x)
        return x


class _MaskHead(_Layer):
    """Masks over the first level's basis, decoded by each stem's synthesis: ``[N, T0, C0]``
    and ``basis [N, T0, C0]`` -> ``stems [S, N, T0 * stride]``."""

    def __init__(self, mask: CausalConv1d, synthesis: CausalConvTranspose1d, analysis: CausalConv1d,
                 bias_free: bool, frames_in: int) -> None:
        n_stems = synthesis.conv.out_channels
        k = synthesis.conv.kernel_size[0]
        self.mask_weight = _copy(mask.conv.weight[:, :, 0].t())  # [C0, S * C0]
        self.mask_bias = _copy(mask.conv.bias)
        # [C0]: with bias_free_masking the masks gate the coefficients without the analysis bias
        self.basis_bias = _copy(analysis.conv.bias) if bias_free else np.zeros_like(_copy(analysis.conv.bias))
        self.synth_weight = _copy(synthesis.conv.weight.reshape(n_stems, -1, k))  # [S, C0, K]
        bias = synthesis.conv.bias  # none with bias_free_masking
        self.synth_bias = _copy(bias) if bias is not None else np.zeros(n_stems, np.float32)
        self.stride, self.tail_rows = synthesis.stride, synthesis.tail_samples
        self.frames_out = frames_in * synthesis.stride

    def bind(self, channels: int) -> None:
        self.masks = np.zeros_like(self.mask_bias)
        self.overlap = _zeros(channels, self.synth_weight.shape[0], self.tail_rows + self.frames_out)

    def reset(self) -> None:
        self.overlap.fill(0.0)

    def __call__(self, x: np.ndarray, basis: np.ndarray, stems: np.ndarray) -> None:
        self.k.masked_synthesis(x, self.mask_weight, self.mask_bias, basis, self.basis_bias, self.synth_weight,
                          self.synth_bias, self.stride, self.masks, self.overlap, stems)


class _WaveformHead(_Layer):
    """One waveform per stem from a transposed conv of ``elu(x)``: ``[N, T0, C0] -> stems [S, N, F]``."""

    def __init__(self, head: CausalConvTranspose1d, frames_in: int) -> None:
        self.conv = _ConvTranspose(head, frames_in)

    def bind(self, channels: int) -> None:
        self.conv.bind(channels)
        self.stem_major = self.conv.out.transpose(2, 0, 1)  # a view [S, N, F] of [N, F, S]

    def reset(self) -> None:
        self.conv.reset()

    def use_kernels(self, k: _Kernels) -> None:
        self.conv.use_kernels(k)

    def __call__(self, x: np.ndarray, basis: np.ndarray, stems: np.ndarray) -> None:
        self.conv(x)
        np.copyto(stems, self.stem_major)


class _MixtureConsistency(_Layer):
    """Stems ``[S, N, F]`` corrected to sum to the input frame ``[N, F]`` delayed by ``delay`` samples."""

    def __init__(self, delay_samples: int, frame_size: int) -> None:
        self.delay_samples, self.frame_size = delay_samples, frame_size

    def bind(self, channels: int) -> None:
        self.history = _zeros(channels, self.delay_samples + self.frame_size)

    def reset(self) -> None:
        self.history.fill(0.0)

    def __call__(self, frame: np.ndarray, stems: np.ndarray) -> None:
        self.k.mixture_consistency(frame, self.history, stems)


def _encoder_level(level: EncoderLevel, frames_in: int) -> _Level:
    down = _CausalConv(level.down, frames_in)
    return _Level(down, [_ResidualUnit(u, down.frames_out) for u in level.units])


def _decoder_level(level: DecoderLevel, frames_in: int) -> _Level:
    up = _ConvTranspose(level.up, frames_in)
    return _Level(up, [_ResidualUnit(u, up.frames_out) for u in level.units])


# ---------------------------------------------------------------------- the step
class NumbaFrameStep:
    """One streaming frame step of an eval-mode causal :class:`RQVAESeparator`, on the CPU.

    ``step(frame [C, F], out [S, C, F])`` separates one frame of ``C`` independent mono
    streams into ``out`` (float32, any memory layout), carrying every state to the next step,
    exactly as the torch model does in streaming mode with the first ``n_q`` quantizers.
    Weights are copied at construction (later changes to ``net`` are not seen). Construction
    binds ``channels`` streams and runs one silent frame, which compiles the kernels (or
    loads them from numba's cache); ``bind`` reallocates for another channel count.
    """

    def __init__(self, net: RQVAESeparator, n_q: int | None = None, channels: int = 1,
                 release_gil: bool = True) -> None:
        _check_supported(net)
        config = net.config
        self.n_q = net.quantizer._check_n_q(n_q)
        self.frame_size: int = config.frame_size
        self.n_stems = len(config.stems)
        # frames per step at the output of each encoder level (the latent: one per step)
        frames = [config.frame_size // math.prod(config.strides[:k + 1]) for k in range(len(config.strides))]
        self._encoder = [_encoder_level(level, frames_out * stride)
                         for level, frames_out, stride in zip(net.encoder, frames, config.strides)]
        if config.temporal == "lstm":
            self._temporal: list[_LSTM | _ResidualUnit] = [_LSTM(net.temporal, frames[-1])]
        elif config.temporal == "conv":
            self._temporal = [_ResidualUnit(u, frames[-1]) for u in net.temporal.units]
        else:
            self._temporal = []
        self._quantizer = _Quantizer(net.quantizer, self.n_q, frames[-1])
        self._decoder = [_decoder_level(level, frames_in)
                         for level, frames_in in zip(net.decoder, reversed(frames[1:]))]
        if config.output == "mask":
            self._head: _MaskHead | _WaveformHead = _MaskHead(net.mask, net.synthesis, net.encoder[0].down,
                                                                    config.bias_free_masking, frames[0])
        else:
            self._head = _WaveformHead(net.head, frames[0])
        self._consistency = ([_MixtureConsistency(config.output_delay_samples, config.frame_size)]
                             if config.mixture_consistency else [])
        self.channels = 0
        self.use_kernels(release_gil)
        self.bind(channels)
        self.step(np.zeros((channels, self.frame_size), np.float32), self._stems)
        self.reset()

    def _layers(self) -> list:
        return [*self._encoder, *self._temporal, self._quantizer, *self._decoder, self._head, *self._consistency]

    def use_kernels(self, release_gil: bool) -> None:
        """Run on kernels that release the GIL (for a worker thread) or keep it (for the audio
        callback, see :func:`kernels`); the same arithmetic either way. Compiles on first use."""
        k = kernels(release_gil)
        for layer in self._layers():
            layer.use_kernels(k)
        self.release_gil = release_gil

    def bind(self, channels: int) -> None:
        """Allocate zeroed states and work buffers for ``channels`` streams."""
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        for layer in self._layers():
            layer.bind(channels)
        self._input = _zeros(channels, self.frame_size, 1)  # [N, F, 1]: the first conv's input
        self._input_2d = self._input[:, :, 0]
        self._stems = _zeros(self.n_stems, channels, self.frame_size)
        self._skips = [level.out for level in reversed(self._encoder[:-1])]
        self._basis = self._encoder[0].first.out
        self.channels = channels

    def reset(self) -> None:
        """Zero every streaming state in place (as a fresh instance)."""
        for layer in self._layers():
            layer.reset()

    def step(self, frame: np.ndarray, out: np.ndarray) -> None:
        """Separate ``frame [C, F]`` (float32) into ``out [S, C, F]`` and advance the state."""
        if frame.shape != self._input_2d.shape or out.shape != self._stems.shape:
            raise ValueError(f"bound to {self.channels} channel(s) of {self.frame_size} samples: expected "
                             f"frame {self._input_2d.shape} and out {self._stems.shape}, got "
                             f"{frame.shape} and {out.shape}")
        np.copyto(self._input_2d, frame)
        x = self._input
        for level in self._encoder:
            x = level(x)
        for layer in self._temporal:
            x = layer(x)
        x = self._quantizer(x)
        for level, skip in zip(self._decoder, self._skips):
            x = level(x, skip)
        self._head(x, self._basis, self._stems)
        for layer in self._consistency:
            layer(self._input_2d, self._stems)
        np.copyto(out, self._stems)


def _check_supported(net: RQVAESeparator) -> None:
    """Raise ``ValueError`` naming what this backend cannot run and what to use instead."""
    if not net.config.causal:
        raise ValueError("config.causal is False: the numba frame step streams causal models only; "
                         "run a non-causal model offline through RQVAESeparator.forward (backend 'torch')")
    if net.training:
        raise ValueError("the network is in training mode: call net.eval() before building a NumbaFrameStep")
    dtypes = {p.dtype for p in net.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f"the numba frame step runs float32 weights; the network has {sorted(map(str, dtypes))}: "
                         "call net.float() first")
