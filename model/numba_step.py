"""``NumbaFrameStep``: the separator's streaming frame step as numba CPU kernels.

Eager PyTorch spends a frame step of the default model (1.2 M multiply-adds) on the set-up
of about 400 tiny ops; the kernels of :mod:`model.numba_kernels` run the same arithmetic over
preallocated numpy arrays, without dispatch, and equal the torch streaming path within float32
rounding.

The step follows the network's own modules: a registry maps each torch layer type to its
numba layer (the kernel it calls and the arrays it needs), and :class:`NumbaFrameStep` walks
the network from its top module down, so strides, levels, units, the temporal model and the
heads are read from the network, never re-derived from its config. A module the walk does not
run (a new layer type, or a container whose numba layer does not know a new child) is refused
by name at construction, so an architecture change cannot be skipped here silently.

Layout: every activation is time-major per stream, ``[N, T, C]`` (``N`` independent mono
streams, the torch model's batch). Weights are copied once, transposed to match
(``[K, C_in, C_out]`` for convolutions).

State: each numba layer declares its state as a :class:`model.streaming.StreamingState`
dataclass of numpy arrays (the torch layers' contract: ``reset`` zeros it in place),
allocated once per channel count by ``bind`` and updated in place:
- a causal conv's ``window [N, P + T_in, C_in]``: rows ``:P`` carry the last ``P`` input
  rows of the previous step (its state), rows ``P:`` take this step's input;
- a transposed conv's ``overlap [N, tail + T_out, C_out]``: rows ``:tail`` carry what earlier
  steps owe this one (bias excluded, ``tail = k - stride``), the rest is overlap-added anew;
- the LSTM's ``hidden`` and ``cell [layers, N, H]``; mixture consistency's ``history``.
Each layer also owns its output array and work buffers, and ``bind`` turns the walk into a
flat list of kernel calls over those fixed arrays, so ``step`` allocates no arrays.
"""
from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .blocks import CausalConvStack, DecoderLevel, EncoderLevel, ResidualUnit
from .numba_kernels import KernelSet, kernels
from .rvq import ResidualVectorQuantizer
from .separator import RQVAESeparator
from .streaming import CausalConv1d, CausalConvTranspose1d, SampleDelay, StreamingLSTM, StreamingState

__all__ = ["NumbaFrameStep", "kernels"]


# ---------------------------------------------------------------------- states
@dataclass
class WindowState(StreamingState):
    """A causal conv's ``window [N, P + T_in, C_in]``: rows ``:P`` carry the last ``P`` input rows
    of the previous step (the state proper), rows ``P:`` take this step's input."""

    window: np.ndarray


@dataclass
class OverlapState(StreamingState):
    """A transposed conv's ``overlap``: ``tail = k - stride`` rows that earlier steps owe this one
    (bias excluded), then this step's overlap-add: ``[N, tail + T_out, C_out]``, or stem-major
    ``[N, S, tail + T_out]`` for the mask head's grouped synthesis."""

    overlap: np.ndarray


@dataclass
class LSTMState(StreamingState):
    """Hidden and cell state of an LSTM: each ``[layers, N, H]``."""

    hidden: np.ndarray
    cell: np.ndarray


@dataclass
class HistoryState(StreamingState):
    """Mixture consistency's delay line ``[N, D + F]``: columns ``:D`` carry the last ``D`` input
    samples, the frame is copied in after them."""

    history: np.ndarray


# ---------------------------------------------------------------------- layers
def _copy(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous float32 numpy copy of ``tensor`` (never memory shared with torch)."""
    return np.array(tensor.detach().cpu().numpy(), dtype=np.float32, order="C", copy=True)


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


Op = tuple[Callable[..., Any], tuple[Any, ...]]  # one kernel call of a step: (kernel, its arguments)


class _Layer(abc.ABC):
    """The numba counterpart of a torch module, for ``frames_in`` input frames per step.

    Weights are copied at construction. ``bind(x)`` allocates, for the ``N`` streams of its input
    array ``x [N, frames_in, C_in]``, the layer's state (``states()``), work arrays and output
    ``out [N, frames_out, C_out]``, and returns ``out``; ``ops(k)`` lists the kernel calls of one
    step over those fixed arrays, with the kernel set ``k`` (see :func:`kernels`).
    """

    frames_out: int
    out: np.ndarray

    @abc.abstractmethod
    def bind(self, x: np.ndarray) -> np.ndarray: ...

    def states(self) -> list[StreamingState]:
        return []

    @abc.abstractmethod
    def ops(self, k: KernelSet) -> list[Op]: ...


class _StatefulLayer(_Layer):
    """A layer with one state of its own (allocated by ``bind``)."""

    state: StreamingState

    def states(self) -> list[StreamingState]:
        return [self.state]


class _Walk:
    """Builds the numba layers of a network module by module (through :data:`_LAYERS`) and
    records which modules they run, so that a module left out is an error, not a silent skip."""

    def __init__(self, net: nn.Module, n_q: int) -> None:
        self.n_q = n_q
        self._names = {id(m): name or type(net).__name__ for name, m in net.named_modules()}
        self._run: set[int] = set()

    def build(self, module: nn.Module, frames_in: int) -> _Layer:
        """The numba layer of ``module`` (looked up by type, base classes included)."""
        for cls in type(module).__mro__:
            make = _LAYERS.get(cls)
            if make is not None:
                self._run.add(id(module))
                return make(module, frames_in, self)
        raise ValueError(f"the numba frame step has no kernel for {self.name(module)} "
                         f"({type(module).__name__}): register a numba layer for it in model/numba_step.py, "
                         "or run this network with backend='torch'")

    def name(self, module: nn.Module) -> str:
        """``module``'s dotted path in the network (``encoder.0.down``)."""
        return self._names.get(id(module), type(module).__name__)

    def runs(self, *modules: nn.Module) -> None:
        """Mark ``modules`` and all their submodules as run (a layer that reads their weights)."""
        for module in modules:
            self._run.update(id(m) for m in module.modules())

    def passes(self, *modules: nn.Module) -> None:
        """Mark containers whose children are built one by one as run (only the containers)."""
        self._run.update(id(m) for m in modules)

    def check_complete(self, net: nn.Module) -> None:
        missing = [name or type(net).__name__ for name, m in net.named_modules() if id(m) not in self._run]
        if missing:
            raise ValueError(f"the numba frame step does not run {', '.join(missing)} of this network: "
                             "teach the numba layer of their parent about them (model/numba_step.py), or run "
                             "this network with backend='torch'")


_LAYERS: dict[type, Callable[[Any, int, _Walk], _Layer]] = {}


def _numba_layer(*torch_types: type) -> Callable[[type], type]:
    """Register the decorated class as the numba layer of ``torch_types``."""
    def register(layer: type) -> type:
        for t in torch_types:
            _LAYERS[t] = layer
        return layer
    return register


def _check_frames(frames_in: int, stride: int, where: str) -> None:
    if frames_in % stride:
        raise ValueError(f"{where}: {frames_in} input frames per step are not a multiple of its stride {stride}")


@_numba_layer(CausalConv1d)
class _CausalConv(_StatefulLayer):
    """A :class:`CausalConv1d`: ``[N, T_in, C_in] -> [N, T_in / stride, C_out]``."""

    def __init__(self, conv: CausalConv1d, frames_in: int, walk: _Walk) -> None:
        walk.runs(conv)
        _check_frames(frames_in, conv.stride, walk.name(conv))
        self.weight = _copy(conv.conv.weight.permute(2, 1, 0))  # [K, C_in, C_out]
        self.bias = _copy(conv.conv.bias)
        self.stride, self.dilation = conv.stride, conv.conv.dilation[0]
        self.context_rows, self.frames_in = conv.context_samples, frames_in
        self.frames_out = frames_in // conv.stride

    def bind(self, x: np.ndarray) -> np.ndarray:
        _, c_in, c_out = self.weight.shape
        self.x = x
        self.state = WindowState(_zeros(x.shape[0], self.context_rows + self.frames_in, c_in))
        self.out = _zeros(x.shape[0], self.frames_out, c_out)
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.causal_conv, (self.x, self.state.window, self.weight, self.bias, self.stride, self.dilation,
                                 self.out))]


@_numba_layer(ResidualUnit)
class _ResidualUnit(_Layer):
    """A :class:`ResidualUnit` (one fused kernel): ``[N, T, C] -> [N, T, C]``."""

    def __init__(self, unit: ResidualUnit, frames: int, walk: _Walk) -> None:
        walk.runs(unit)
        self.conv = _CausalConv(unit.conv, frames, walk)  # its window and its output as work
        self.norm_weight, self.norm_bias = _copy(unit.norm.weight.flatten()), _copy(unit.norm.bias.flatten())
        self.eps = float(unit.norm.eps)
        self.out_weight = _copy(unit.out.weight[:, :, 0].t())  # [C_in, C_out]
        self.out_bias = _copy(unit.out.bias)
        self.frames_out = frames

    def bind(self, x: np.ndarray) -> np.ndarray:
        self.conv.bind(x)
        self.x, self.out = x, np.zeros_like(self.conv.out)
        return self.out

    def states(self) -> list[StreamingState]:
        return self.conv.states()

    def ops(self, k: KernelSet) -> list[Op]:
        c = self.conv
        return [(k.residual_unit, (self.x, self.norm_weight, self.norm_bias, self.eps, c.state.window, c.weight,
                                   c.bias, c.dilation, c.out, self.out_weight, self.out_bias, self.out))]


class _Chain(_Layer):
    """Layers run one after the other (none: the identity)."""

    def __init__(self, modules: list[nn.Module], frames_in: int, walk: _Walk) -> None:
        self.layers: list[_Layer] = []
        for module in modules:
            self.layers.append(walk.build(module, frames_in))
            frames_in = self.layers[-1].frames_out
        self.frames_out = frames_in

    def bind(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.bind(x)
        self.out = x
        return x

    def states(self) -> list[StreamingState]:
        return [s for layer in self.layers for s in layer.states()]

    def ops(self, k: KernelSet) -> list[Op]:
        return [op for layer in self.layers for op in layer.ops(k)]


@_numba_layer(nn.Sequential)
def _sequential(seq: nn.Sequential, frames_in: int, walk: _Walk) -> _Chain:
    return _Chain(list(seq), frames_in, walk)


@_numba_layer(nn.Identity)
def _identity(_: nn.Identity, frames_in: int, walk: _Walk) -> _Chain:
    return _Chain([], frames_in, walk)


def _level_features(level: EncoderLevel) -> list[nn.Module]:
    """What an :class:`EncoderLevel` runs after its strided conv (``EncoderLevel.features``)."""
    return [*([level.project] if level.project is not None else []), level.units]


@_numba_layer(EncoderLevel)
def _encoder_level(level: EncoderLevel, frames_in: int, walk: _Walk) -> _Chain:
    return _Chain([level.down, *_level_features(level)], frames_in, walk)


@_numba_layer(CausalConvStack)
def _conv_stack(stack: CausalConvStack, frames_in: int, walk: _Walk) -> _Chain:
    return _Chain([stack.units], frames_in, walk)


@_numba_layer(StreamingLSTM)
class _LSTM(_StatefulLayer):
    """A causal :class:`StreamingLSTM` (with its residual connection): ``[N, T, H] -> [N, T, H]``."""

    def __init__(self, lstm: StreamingLSTM, frames: int, walk: _Walk) -> None:
        if lstm.proj is not None:
            raise ValueError("a bidirectional LSTM cannot stream (it needs the future): "
                             "run this network offline through RQVAESeparator.forward")
        walk.runs(lstm)
        net = lstm.lstm
        layers = range(net.num_layers)
        self.w_ih = np.stack([_copy(getattr(net, f"weight_ih_l{k}").t()) for k in layers])  # [L, H, 4H]
        self.w_hh = np.stack([_copy(getattr(net, f"weight_hh_l{k}").t()) for k in layers])
        self.bias = np.stack([_copy(getattr(net, f"bias_ih_l{k}") + getattr(net, f"bias_hh_l{k}"))
                              for k in layers])
        self.frames_out = frames

    def bind(self, x: np.ndarray) -> np.ndarray:
        layers, h_size, _ = self.w_hh.shape
        self.x = x
        self.state = LSTMState(_zeros(layers, x.shape[0], h_size), _zeros(layers, x.shape[0], h_size))
        self.gates = _zeros(4 * h_size)
        self.out = _zeros(x.shape[0], self.frames_out, h_size)
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.lstm, (self.x, self.w_ih, self.w_hh, self.bias, self.state.hidden, self.state.cell, self.gates,
                          self.out))]


@_numba_layer(ResidualVectorQuantizer)
class _Quantizer(_Layer):
    """The inference path of a :class:`ResidualVectorQuantizer` with the walk's ``n_q`` quantizers
    (stateless): ``[N, T, dim] -> [N, T, dim]``."""

    def __init__(self, rvq: ResidualVectorQuantizer, frames: int, walk: _Walk) -> None:
        walk.runs(rvq)
        self.in_weight = _copy(rvq.project_in.weight[:, :, 0].t())  # [dim, D]
        self.in_bias = _copy(rvq.project_in.bias)
        self.codebooks = _copy(rvq.codebooks[:walk.n_q].transpose(1, 2))  # [n_q, D, K]
        self.norms = _copy(rvq._code_norms()[:walk.n_q])  # the very norms torch compares with
        self.out_weight = _copy(rvq.project_out.weight[:, :, 0].t())  # [D, dim]
        self.out_bias = _copy(rvq.project_out.bias)
        self.frames_out = frames

    def bind(self, x: np.ndarray) -> np.ndarray:
        dim, d_size = self.in_weight.shape
        n = x.shape[0]
        self.x = x
        self.residual, self.total = _zeros(n, d_size), _zeros(n, d_size)
        self.dots = _zeros(n, self.codebooks.shape[2])
        self.out = _zeros(n, self.frames_out, dim)
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.quantize, (self.x, self.in_weight, self.in_bias, self.codebooks, self.norms, self.out_weight,
                              self.out_bias, self.residual, self.total, self.dots, self.out))]


class _EluConvTranspose(_StatefulLayer):
    """An ungrouped :class:`CausalConvTranspose1d` of ``elu(x)`` (how the decoder and the waveform
    head call theirs), plus an optional skip: ``[N, T, C_in] -> [N, T * stride, C_out]``."""

    def __init__(self, conv: CausalConvTranspose1d, frames_in: int, walk: _Walk) -> None:
        if conv.conv.groups != 1 or conv.conv.bias is None:
            raise ValueError(f"the numba decoder kernel runs ungrouped transposed convs with a bias; this one has "
                             f"groups={conv.conv.groups}, bias={conv.conv.bias is not None}: use backend='torch'")
        walk.runs(conv)
        self.weight = _copy(conv.conv.weight.transpose(1, 2))  # [C_in, K, C_out]
        self.bias = _copy(conv.conv.bias)
        self.stride, self.tail_rows = conv.stride, conv.tail_samples
        self.frames_out = frames_in * conv.stride
        self.skip: np.ndarray | None = None

    def bind(self, x: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        c_out = self.weight.shape[2]
        self.x, self.skip = x, skip
        self.state = OverlapState(_zeros(x.shape[0], self.tail_rows + self.frames_out, c_out))
        self.out = _zeros(x.shape[0], self.frames_out, c_out)
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.elu_conv_transpose, (self.x, self.weight, self.bias, self.stride, self.state.overlap, self.skip,
                                        self.out))]


@_numba_layer(DecoderLevel)
class _DecoderLevel(_Layer):
    """A :class:`DecoderLevel`: transposed conv of ``elu(x)`` plus the encoder's skip, then its units."""

    def __init__(self, level: DecoderLevel, frames_in: int, walk: _Walk) -> None:
        self.up = _EluConvTranspose(level.up, frames_in, walk)
        self.units = walk.build(level.units, self.up.frames_out)
        self.frames_out = self.units.frames_out

    def bind(self, x: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        self.out = self.units.bind(self.up.bind(x, skip))
        return self.out

    def states(self) -> list[StreamingState]:
        return self.up.states() + self.units.states()

    def ops(self, k: KernelSet) -> list[Op]:
        return self.up.ops(k) + self.units.ops(k)


class _MaskHead(_StatefulLayer):
    """Masks over the first level's basis, decoded by each stem's synthesis: ``x [N, T0, C0]``
    and ``basis [N, T0, CB]`` -> ``stems [S, N, T0 * stride]``."""

    def __init__(self, net: RQVAESeparator, frames_in: int, walk: _Walk) -> None:
        mask, synthesis, analysis = net.mask, net.synthesis, net.encoder[0].down
        walk.runs(mask, synthesis)
        n_stems = synthesis.conv.out_channels
        k = synthesis.conv.kernel_size[0]
        self.mask_weight = _copy(mask.conv.weight[:, :, 0].t())  # [C0, S * CB]
        self.mask_bias = _copy(mask.conv.bias)
        # [CB]: with bias_free_masking the masks gate the coefficients without the analysis bias
        bias = _copy(analysis.conv.bias)
        self.basis_bias = bias if net.config.bias_free_masking else np.zeros_like(bias)
        self.synth_weight = _copy(synthesis.conv.weight.reshape(n_stems, -1, k))  # [S, CB, K]
        synth_bias = synthesis.conv.bias  # none with bias_free_masking
        self.synth_bias = _copy(synth_bias) if synth_bias is not None else np.zeros(n_stems, np.float32)
        # [S, CB]: level_generator's vectors, scaled by each frame's level ([S, 0]: none)
        generator = net.generator
        self.generator = _copy(generator) if generator is not None else np.zeros((n_stems, 0), np.float32)
        self.steps_per_frame = net.config.basis_steps_per_frame
        self.stride, self.tail_rows = synthesis.stride, synthesis.tail_samples
        self.n_stems, self.frames_out = n_stems, frames_in * synthesis.stride

    def bind(self, x: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
        self.x, self.basis = x, basis
        self.masks = np.zeros_like(self.mask_bias)
        self.state = OverlapState(_zeros(x.shape[0], self.n_stems, self.tail_rows + self.frames_out))
        self.out = _zeros(self.n_stems, x.shape[0], self.frames_out)
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.masked_synthesis, (self.x, self.mask_weight, self.mask_bias, self.basis, self.basis_bias,
                                      self.generator, self.steps_per_frame, self.synth_weight, self.synth_bias,
                                      self.stride, self.masks, self.state.overlap, self.out))]


class _WaveformHead(_Layer):
    """One waveform per stem from a transposed conv of ``elu(x)``: ``[N, T0, C0] -> stems [S, N, F]``."""

    def __init__(self, net: RQVAESeparator, frames_in: int, walk: _Walk) -> None:
        self.conv = _EluConvTranspose(net.head, frames_in, walk)
        self.frames_out = self.conv.frames_out

    def bind(self, x: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
        self.conv.bind(x)
        self.stem_major = self.conv.out.transpose(2, 0, 1)  # a view [S, N, F] of [N, F, S]
        self.out = _zeros(*self.stem_major.shape)
        return self.out

    def states(self) -> list[StreamingState]:
        return self.conv.states()

    def ops(self, k: KernelSet) -> list[Op]:
        return self.conv.ops(k) + [(np.copyto, (self.out, self.stem_major))]


class _MixtureConsistency(_StatefulLayer):
    """A :class:`SampleDelay` of the mixture used to correct the stems ``[S, N, F]`` (in place)
    to sum to the input frame ``[N, F]`` delayed by ``delay_samples``."""

    def __init__(self, delay: SampleDelay, frames: int, walk: _Walk) -> None:
        walk.runs(delay)
        self.delay_samples, self.frames_out = delay.delay_samples, frames

    def bind(self, x: np.ndarray, stems: np.ndarray | None = None) -> np.ndarray:
        self.x, self.out = x, stems
        self.state = HistoryState(_zeros(x.shape[0], self.delay_samples + self.frames_out))
        return self.out

    def ops(self, k: KernelSet) -> list[Op]:
        return [(k.mixture_consistency, (self.x, self.state.history, self.out))]


@_numba_layer(RQVAESeparator)
class _Separator(_Layer):
    """An :class:`RQVAESeparator` as its ``forward`` runs it: ``[N, F, 1] -> stems [S, N, F]``.

    Encoder levels (the first one's strided conv is the basis the mask head gates), the temporal
    model, the quantizer, decoder levels each adding the matching encoder level's output, the
    head, and mixture consistency when the network has its delay line.
    """

    def __init__(self, net: RQVAESeparator, frames: int, walk: _Walk) -> None:
        first = net.encoder[0]  # run in two parts, as forward does: its strided conv's output is the basis
        walk.passes(net.encoder, net.decoder, first)
        self.analysis = walk.build(first.down, frames)
        self.encoder: list[_Layer] = [_Chain(_level_features(first), self.analysis.frames_out, walk)]
        frames_in = self.encoder[0].frames_out
        for level in net.encoder[1:]:
            self.encoder.append(walk.build(level, frames_in))
            frames_in = self.encoder[-1].frames_out
        self.temporal = walk.build(net.temporal, frames_in)
        self.quantizer = walk.build(net.quantizer, self.temporal.frames_out)
        self.decoder = []
        frames_in = self.quantizer.frames_out
        for level in net.decoder:
            self.decoder.append(walk.build(level, frames_in))
            frames_in = self.decoder[-1].frames_out
        head = _MaskHead if net.config.output == "mask" else _WaveformHead
        self.head: _MaskHead | _WaveformHead = head(net, frames_in, walk)
        self.consistency = (None if net.mixture_delay is None
                            else _MixtureConsistency(net.mixture_delay, self.head.frames_out, walk))
        self.frames_out = self.head.frames_out
        if self.frames_out != frames:
            raise ValueError(f"the network turns {frames} samples into {self.frames_out}: its decoder does not "
                             "mirror its encoder")

    def bind(self, x: np.ndarray) -> np.ndarray:
        basis = self.analysis.bind(x)
        skips = [basis]
        for level in self.encoder:
            skips.append(level.bind(skips[-1]))
        y = self.quantizer.bind(self.temporal.bind(skips[-1]))
        for level, skip in zip(self.decoder, reversed(skips[1:-1])):
            y = level.bind(y, skip)
        self.out = self.head.bind(y, basis)
        if self.consistency is not None:
            self.consistency.bind(x[:, :, 0], self.out)
        return self.out

    def _parts(self) -> list[_Layer]:
        return [self.analysis, *self.encoder, self.temporal, self.quantizer, *self.decoder, self.head,
                *([self.consistency] if self.consistency is not None else [])]

    def states(self) -> list[StreamingState]:
        return [s for part in self._parts() for s in part.states()]

    def ops(self, k: KernelSet) -> list[Op]:
        return [op for part in self._parts() for op in part.ops(k)]


# ---------------------------------------------------------------------- the step
class NumbaFrameStep:
    """One streaming frame step of an eval-mode causal :class:`RQVAESeparator`, on the CPU.

    ``step(frame [C, F], out [S, C, F])`` separates one frame of ``C`` independent mono
    streams into ``out`` (float32, any memory layout), carrying every state to the next step,
    exactly as the torch model does in streaming mode with the first ``n_q`` quantizers.
    The layers are built by walking ``net``'s modules (see the module docstring); weights are
    copied at construction (later changes to ``net`` are not seen). Construction binds
    ``channels`` streams and runs one silent frame, which compiles the kernels (or loads them
    from numba's cache); ``bind`` reallocates for another channel count.
    """

    def __init__(self, net: RQVAESeparator, n_q: int | None = None, channels: int = 1,
                 release_gil: bool = True) -> None:
        _check_supported(net)
        self.n_q = net.quantizer.check_n_q(n_q)
        self.frame_size: int = net.frame_size
        walk = _Walk(net, self.n_q)
        self._net = walk.build(net, self.frame_size)
        walk.check_complete(net)
        self.release_gil = release_gil
        self.channels = 0
        self.bind(channels)
        self.n_stems = self._stems.shape[0]
        self.step(np.zeros((channels, self.frame_size), np.float32), self._stems)
        self.reset()

    def use_kernels(self, release_gil: bool) -> None:
        """Run on kernels that release the GIL (for a worker thread) or keep it (for the audio
        callback, see :func:`kernels`); the same arithmetic and the same state either way.
        Compiles on first use."""
        self.release_gil = release_gil
        self._program = self._net.ops(kernels(release_gil))

    def bind(self, channels: int) -> None:
        """Allocate zeroed states and work buffers for ``channels`` streams."""
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self._input = _zeros(channels, self.frame_size, 1)  # [N, F, 1]: the first conv's input
        self._input_2d = self._input[:, :, 0]
        self._stems = self._net.bind(self._input)
        self._states = self._net.states()
        self.channels = channels
        self.use_kernels(self.release_gil)

    def states(self) -> list[StreamingState]:
        """Every layer's state, in the order the step runs the layers."""
        return list(self._states)

    def reset(self) -> None:
        """Zero every streaming state in place (as a fresh instance)."""
        for state in self._states:
            state.reset()

    def step(self, frame: np.ndarray, out: np.ndarray) -> None:
        """Separate ``frame [C, F]`` (float32) into ``out [S, C, F]`` and advance the state."""
        if frame.shape != self._input_2d.shape or out.shape != self._stems.shape:
            raise ValueError(f"bound to {self.channels} channel(s) of {self.frame_size} samples: expected "
                             f"frame {self._input_2d.shape} and out {self._stems.shape}, got "
                             f"{frame.shape} and {out.shape}")
        np.copyto(self._input_2d, frame)
        for kernel, args in self._program:
            kernel(*args)
        np.copyto(out, self._stems)

    def kernel_times_s(self, frames: np.ndarray) -> list[tuple[str, float]]:
        """Step through ``frames [T, C, F]`` timing each kernel call: ``(kernel name, mean seconds
        per frame)`` in the order the step runs them (a layer type appears once per layer).
        Advances the state like :meth:`step`; for benchmarks (``python -m model.bench --kernels``)."""
        if frames.ndim != 3 or frames.shape[1:] != self._input_2d.shape:
            raise ValueError(f"expected frames [T, {self.channels}, {self.frame_size}], got {frames.shape}")
        totals = np.zeros(len(self._program))
        for frame in frames:
            np.copyto(self._input_2d, frame)
            for i, (kernel, args) in enumerate(self._program):
                t0 = time.perf_counter()
                kernel(*args)
                totals[i] += time.perf_counter() - t0
        names = [kernel.__name__.removeprefix("_").removesuffix("_gil") for kernel, _ in self._program]
        return [(name, total / len(frames)) for name, total in zip(names, totals)]


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
