"""The numba CPU kernels of the separator's frame step (see :mod:`model.numba_step`).

Every activation is time-major per stream, ``[N, T, C]`` (``N`` independent mono streams),
so the innermost loops run over contiguous output channels and vectorise without reordering
any sum (``fastmath`` stays off). The kernels write only into arrays they are given (states,
work arrays, outputs), so a step allocates nothing. :func:`kernels` hands out the set
compiled to release the GIL (worker threads) or to keep it (the audio callback).
"""
from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from .config import LEVEL_EPS

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
def _masked_synthesis(x, mask_weight, mask_bias, basis, basis_bias, generator, steps_per_frame, synth_weight,
                      synth_bias, stride, masks, overlap, stems):
    """Mask head: ``sigmoid(1x1(elu(x [N, T, C0])))`` masks, once per stem, the coefficients
    ``basis [N, T, CB]`` minus ``basis_bias [CB]`` plus the stem's ``generator [S, CB]`` times
    the frame's level (``e / sqrt(e + LEVEL_EPS)`` of the mean square ``e`` of the coefficients
    over the frame's ``steps_per_frame`` basis steps; ``[S, 0]``: no generator, no level), and
    each stem's grouped transposed conv decodes it into ``stems [S, N, T * stride]``.

    ``mask_weight [C0, S * CB]``, ``synth_weight [S, CB, K]``, ``synth_bias [S]``; work
    ``masks [S * CB]`` (the masks, then the masked coefficients); state ``overlap [N, S,
    K - stride + T * stride]`` (stem-major). ``CB``, the basis's rows, is ``C0`` unless the
    config's ``basis_channels`` says more. Everything per sample stays float32 (the level too),
    so the synthesis's inner loop is a float32 multiply-add over ``K`` contiguous taps.
    """
    n_streams, t_len, c0 = x.shape
    cb = basis.shape[2]
    n_stems, _, k = synth_weight.shape
    n_out = t_len * stride
    tail = k - stride
    generating = generator.shape[1] > 0
    for n in range(n_streams):
        for s in range(n_stems):
            for r in range(tail, tail + n_out):
                overlap[n, s, r] = 0.0
        level = np.float32(0.0)
        for t in range(t_len):
            if generating and t % steps_per_frame == 0:  # a new frame: its level from all of its steps
                energy = 0.0
                for u in range(t, t + steps_per_frame):
                    for c in range(cb):
                        v = basis[n, u, c] - basis_bias[c]
                        energy += v * v
                energy /= steps_per_frame * cb
                level = np.float32(energy / math.sqrt(energy + LEVEL_EPS))
            for m in range(n_stems * cb):
                masks[m] = mask_bias[m]
            for i in range(c0):
                v = _elu(x[n, t, i])
                w = mask_weight[i]
                for m in range(n_stems * cb):
                    masks[m] += w[m] * v
            for s in range(n_stems):
                for c in range(cb):
                    coefficient = basis[n, t, c] - basis_bias[c]
                    if generating:
                        coefficient += generator[s, c] * level
                    masks[s * cb + c] = _sigmoid(masks[s * cb + c]) * coefficient
            for s in range(n_stems):
                dst = overlap[n, s, t * stride:t * stride + k]
                for c in range(cb):
                    a = masks[s * cb + c]
                    w = synth_weight[s, c]
                    for j in range(k):
                        dst[j] += w[j] * a
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


# ---------------------------------------------------------------------- kernel sets
class KernelSet(NamedTuple):
    """The kernels the layers call from Python, compiled either to release the GIL or to keep it."""

    causal_conv: Callable[..., None]
    residual_unit: Callable[..., None]
    lstm: Callable[..., None]
    quantize: Callable[..., None]
    elu_conv_transpose: Callable[..., None]
    masked_synthesis: Callable[..., None]
    mixture_consistency: Callable[..., None]


def _keeping_gil(kernel):
    """``kernel`` compiled to keep the GIL. A copy under its own qualified name, so numba caches
    it apart from the GIL-releasing original (numba's cache index does not tell the two apart)."""
    f = kernel.py_func
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_gil", f.__defaults__)
    copy.__qualname__ = f.__qualname__ + "_gil"
    return numba.njit(cache=True, fastmath=False, nogil=False)(copy)


@functools.cache
def kernels(release_gil: bool) -> KernelSet:
    """The layer kernels. ``release_gil=True`` suits a worker thread (the audio callback's thread
    may run while a kernel does); ``False`` suits the audio callback itself, which holds the GIL
    anyway: a kernel that releases it must win it back on return, which costs up to a switch
    interval when another Python thread is busy."""
    plain = KernelSet(_causal_conv, _residual_unit, _lstm, _quantize, _elu_conv_transpose, _masked_synthesis,
                     _mixture_consistency)
    return plain if release_gil else KernelSet(*(_keeping_gil(k) for k in plain))
