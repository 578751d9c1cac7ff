"""Streaming layers: each owns a small typed state, allocated once and updated in place.

A layer whose state is ``None`` runs offline from an implicit zero state; inside
:func:`streaming` it carries its state from call to call. Both paths run the same arithmetic,
so a signal fed in pieces gives what it gives whole. States are only ever written with in-place
copies, which is what lets a frame step be captured in a CUDA graph.

The contract (after kyutai moshi's ``StreamingModule[State]``): a layer subclasses
``StreamingModule[ItsState]``, where ``ItsState`` is a :class:`StreamingState` dataclass of
tensors, and implements ``_init_streaming_state(batch_size, device, dtype) -> ItsState``. Its
``forward`` reads ``self._streaming_state`` (typed ``ItsState | None``: no casts).
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-1 ``conv`` as one matmul: ``[B, C_in, T] -> [B, C_out, T]`` (cheaper than conv1d)."""
    w = conv.weight.view(conv.out_channels, conv.in_channels)
    return torch.matmul(w, x) + conv.bias.view(1, -1, 1)


@dataclass
class StreamingState:
    """Base of every streaming state: a dataclass whose fields are arrays (torch tensors here;
    numpy arrays in :mod:`model.numba_step`), allocated once and only ever written in place."""

    def arrays(self) -> tuple[torch.Tensor | np.ndarray, ...]:
        """The state's arrays, in field order."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def reset(self) -> None:
        """Zero every array in place (same memory, so a captured CUDA graph stays valid)."""
        for array in self.arrays():
            array[...] = 0


@dataclass
class ConvState(StreamingState):
    """Left context of a causal convolution: ``[B, C_in, P]``."""

    context: torch.Tensor


@dataclass
class ConvTransposeState(StreamingState):
    """Overlap tail a transposed convolution owes its next call (bias removed): ``[B, C_out, k - s]``."""

    tail: torch.Tensor


@dataclass
class DelayState(StreamingState):
    """The last ``d`` input samples of a delay line: ``[B, C, d]``."""

    history: torch.Tensor


@dataclass
class RecurrentState(StreamingState):
    """Hidden and cell state of an LSTM: each ``[layers, B, H]``."""

    hidden: torch.Tensor
    cell: torch.Tensor


_STEP_FRAMES = 4  # streaming LSTM inputs up to this many frames run cell by cell

StateT = TypeVar("StateT", bound=StreamingState)


class StreamingModule(nn.Module, Generic[StateT]):
    """Base of layers with a streaming state of type ``StateT``; ``None`` when offline.

    Subclasses implement :meth:`_init_streaming_state`. Use :func:`streaming` (or
    ``layer.streaming(batch_size)``) to run a network, or a single layer, in streaming mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self._streaming_state: StateT | None = None

    def _init_streaming_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> StateT:
        """A zero state for ``batch_size`` streams, on ``device`` in ``dtype``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _init_streaming_state")

    @property
    def streaming_state(self) -> StateT | None:
        """The current state (``None`` when offline); read-only access for inspection."""
        return self._streaming_state

    def streaming(self, batch_size: int,
                  device: str | torch.device | None = None) -> contextlib.AbstractContextManager[nn.Module]:
        """``with layer.streaming(batch_size): ...``: see :func:`streaming`."""
        return streaming(self, batch_size, device)


def streaming_layers(module: nn.Module) -> list[StreamingModule]:
    """Every streaming layer of ``module`` (itself included), in module order."""
    return [layer for layer in module.modules() if isinstance(layer, StreamingModule)]


def _devices(module: nn.Module) -> set[torch.device]:
    return {t.device for t in [*module.parameters(), *module.buffers()]}


@contextlib.contextmanager
def streaming(module: nn.Module, batch_size: int,
              device: str | torch.device | None = None) -> Iterator[nn.Module]:
    """Run ``module`` in streaming mode for ``batch_size`` streams inside the ``with`` block.

    On entry: moved to ``device`` (when given), switched to eval mode, and every streaming layer
    gets a zero state allocated once (on the device and in the dtype of ``module``'s parameters;
    float32 on the CPU for a module without any). On exit, whatever happened inside, ``module``
    is left exactly as it was found: each submodule's training flag, each layer's previous state
    (``None``, or the state of an enclosing stream), and the device it was moved from.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layers = streaming_layers(module)
    saved_states = [layer._streaming_state for layer in layers]
    saved_training = [(m, m.training) for m in module.modules()]
    moved_from: torch.device | None = None
    if device is not None:
        found = _devices(module)
        if len(found) > 1:
            raise ValueError(f"the module spans devices {sorted(map(str, found))}: it cannot be moved to {device} "
                             "and back; move it to one device first")
        moved_from = next(iter(found), None)
    try:
        if device is not None:
            module.to(device)
        module.eval()
        param = next(module.parameters(), torch.zeros(()))
        for layer in layers:
            layer._streaming_state = layer._init_streaming_state(batch_size, param.device, param.dtype)
        yield module
    finally:
        for layer, state in zip(layers, saved_states):
            layer._streaming_state = state
        for m, training in saved_training:
            m.training = training
        if moved_from is not None:
            module.to(moved_from)


def reset_streaming(module: nn.Module) -> None:
    """Zero every streaming state of ``module`` in place (layers not streaming are left alone)."""
    for layer in streaming_layers(module):
        if layer._streaming_state is not None:
            layer._streaming_state.reset()


class CausalConv1d(StreamingModule[ConvState]):
    """Conv1d with only left (zero) padding: ``[B, C_in, T] -> [B, C_out, T / stride]``.

    Output frame ``n`` sees input up to sample ``(n + 1) * stride - 1``; the layer keeps
    ``(k - 1) * d + 1 - stride`` samples of left context. ``T`` must be a multiple of the
    stride. With ``causal=False`` the same padding is split over both sides (offline only).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, causal: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        self.stride = stride
        self.causal = causal
        self.context_samples = (kernel_size - 1) * dilation + 1 - stride
        if self.context_samples < 0:
            raise ValueError(f"kernel {kernel_size} (dilation {dilation}) is shorter than stride {stride}")

    def _init_streaming_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ConvState:
        return ConvState(torch.zeros(batch_size, self.conv.in_channels, self.context_samples,
                                     device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.stride:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        state = self._streaming_state
        p = self.context_samples
        if state is None:
            pad = (p, 0) if self.causal else (p // 2, p - p // 2)
            return self._conv(F.pad(x, pad))
        full = torch.cat([state.context, x], dim=-1)
        if p:
            state.context.copy_(full[..., full.shape[-1] - p:])
        return self._conv(full)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """Valid convolution as im2col + one matmul: ``[B, C_in, P + T] -> [B, C_out, T / s]``.

        For the few frames of a streaming step this is several times faster on the CPU than
        ``F.conv1d`` (which spends its time on set-up), and it is exact for long inputs too.
        """
        conv = self.conv
        k, d = conv.kernel_size[0], conv.dilation[0]
        windows = x.unfold(-1, (k - 1) * d + 1, self.stride)  # [B, C_in, T', span]
        if d > 1:
            windows = windows[..., ::d]
        b, c, t, _ = windows.shape
        cols = windows.permute(0, 2, 1, 3).reshape(b * t, c * k)
        y = torch.addmm(conv.bias, cols, conv.weight.reshape(conv.out_channels, c * k).t())
        return y.view(b, t, -1).transpose(1, 2)


class CausalConvTranspose1d(StreamingModule[ConvTransposeState]):
    """ConvTranspose1d that emits ``stride`` samples per input frame, carrying its overlap.

    ``[B, C_in, T] -> [B, C_out, T * stride]``; output samples of frame ``n`` depend on input
    frames ``<= n``. The ``k - stride`` overlap tail is carried (without bias) to the next call.
    With ``causal=False`` the tail is trimmed symmetrically instead (offline only). With
    ``bias=False`` zero input gives exactly zero output.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 causal: bool = True, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % stride:
            raise ValueError(f"kernel {kernel_size} must be a multiple of the stride {stride}")
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, groups=groups,
                                       bias=bias)
        self.stride = stride
        self.causal = causal
        self.tail_samples = kernel_size - stride

    def _init_streaming_state(self, batch_size: int, device: torch.device,
                              dtype: torch.dtype) -> ConvTransposeState:
        return ConvTransposeState(torch.zeros(batch_size, self.conv.out_channels, self.tail_samples,
                                              device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_out = x.shape[-1] * self.stride
        y = self._conv_transpose(x)
        tail = self.tail_samples
        state = self._streaming_state
        if state is None:
            start = 0 if self.causal else tail // 2
            return y[..., start:start + n_out]
        if tail:
            y = torch.cat([y[..., :tail] + state.tail, y[..., tail:]], dim=-1)
            if self.conv.bias is None:
                state.tail.copy_(y[..., n_out:])
            else:
                state.tail.copy_(y[..., n_out:] - self.conv.bias.view(1, -1, 1))
        return y[..., :n_out]

    def _conv_transpose(self, x: torch.Tensor) -> torch.Tensor:
        """Full transposed convolution as a (grouped) matmul and an overlap-add.

        ``[B, C_in, T] -> [B, C_out, T * s + k - s]``, equal to ``nn.ConvTranspose1d``.
        """
        conv = self.conv
        g, k, s = conv.groups, conv.kernel_size[0], self.stride
        b, c_in, t = x.shape
        c_out = conv.out_channels
        cols = x.view(b, g, c_in // g, t).permute(1, 0, 3, 2).reshape(g, b * t, c_in // g)
        weight = conv.weight.view(g, c_in // g, (c_out // g) * k)
        frames = torch.bmm(cols, weight)  # [G, B*T, C_out/G * k]
        frames = frames.view(g, b, t, c_out // g, k // s, s).permute(1, 0, 3, 4, 2, 5)
        frames = frames.reshape(b, c_out, k // s, t * s)  # per kernel segment, frames laid end to end
        y = frames.new_zeros(b, c_out, t * s + k - s)
        for j in range(k // s):
            y[..., j * s:j * s + t * s] += frames[:, :, j]
        return y if conv.bias is None else y + conv.bias.view(1, -1, 1)


class SampleDelay(StreamingModule[DelayState]):
    """A delay line of ``delay_samples``: ``[B, C, T] -> [B, C, T]``, output ``t`` = input ``t - d``
    (zeros before the signal starts)."""

    def __init__(self, channels: int, delay_samples: int) -> None:
        super().__init__()
        if delay_samples < 0:
            raise ValueError(f"delay_samples must be >= 0, got {delay_samples}")
        self.channels = channels
        self.delay_samples = delay_samples

    def _init_streaming_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> DelayState:
        return DelayState(torch.zeros(batch_size, self.channels, self.delay_samples, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, n = self.delay_samples, x.shape[-1]
        state = self._streaming_state
        if state is None:
            return F.pad(x, (d, 0))[..., :n]
        full = torch.cat([state.history, x], dim=-1)
        if d:
            state.history.copy_(full[..., n:])
        return full[..., :n]


class StreamingLSTM(StreamingModule[RecurrentState]):
    """Unidirectional LSTM over the latent with a residual connection: ``[B, C, T] -> [B, C, T]``.

    With ``bidirectional=True`` it is the paper's BiLSTM (offline only; outputs are projected
    back to ``C``).
    """

    def __init__(self, channels: int, num_layers: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, channels, num_layers, batch_first=True,
                            bidirectional=bidirectional)
        self.proj = nn.Linear(2 * channels, channels) if bidirectional else None

    def _init_streaming_state(self, batch_size: int, device: torch.device,
                              dtype: torch.dtype) -> RecurrentState:
        if self.proj is not None:
            raise RuntimeError("a bidirectional LSTM cannot stream: it needs the future")
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return RecurrentState(torch.zeros(shape, device=device, dtype=dtype),
                              torch.zeros(shape, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.transpose(1, 2)
        state = self._streaming_state
        if state is None:
            y, _ = self.lstm(seq)
        elif seq.shape[1] <= _STEP_FRAMES and self.proj is None:
            y = self._steps(seq, state)
        else:
            y, (h, c) = self.lstm(seq, (state.hidden, state.cell))
            state.hidden.copy_(h)
            state.cell.copy_(c)
        if self.proj is not None:
            y = self.proj(y)
        return x + y.transpose(1, 2)

    def _steps(self, seq: torch.Tensor, state: RecurrentState) -> torch.Tensor:
        """A few frames ``[B, T, C]`` one LSTM cell at a time (fused LSTM kernels cost ~ms to set up)."""
        lstm = self.lstm
        out = seq
        for layer in range(lstm.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(lstm, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h, c = state.hidden[layer], state.cell[layer]
            steps = []
            for t in range(out.shape[1]):
                h, c = torch.lstm_cell(out[:, t], (h, c), w_ih, w_hh, b_ih, b_hh)
                steps.append(h)
            state.hidden[layer].copy_(h)
            state.cell[layer].copy_(c)
            out = torch.stack(steps, dim=1)
        return out
