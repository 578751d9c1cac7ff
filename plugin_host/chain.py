"""``Chain``: native pedalboard plugins and Python processors in one chain, with latency compensation.

pedalboard cannot host Python plugins inside ``pedalboard.Pedalboard``, so a chain is split
into stages: each run of consecutive native plugins (built-ins, VST3s, whole Pedalboards) is
one ``pedalboard.Pedalboard`` segment, and each Python processor (anything with pedalboard's
``process(input_array, sample_rate, buffer_size, reset)`` and a ``latency_samples``) is a
stage of its own.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pedalboard

from .fifo import SampleFifo
from .layout import check_planar
from .processor import PedalboardProcessor, check_sample_rate

PROBE_MAX_CALLS = 512  # bound on the silent blocks fed to measure a native segment's latency


def is_native(item: object) -> bool:
    """Whether ``item`` is a pedalboard plugin (runs inside a ``pedalboard.Pedalboard``)."""
    return isinstance(item, pedalboard.Plugin)


def check_processor(item: object) -> object:
    """``item`` if it can sit in a chain; otherwise a ``TypeError`` saying what it lacks."""
    if is_native(item):
        return item
    # looked up without evaluating: a property such as Chain.latency_samples may raise until used
    missing = [name for name in ("process", "latency_samples")
               if not hasattr(type(item), name) and name not in getattr(item, "__dict__", {})]
    if missing or not callable(getattr(item, "process")):
        raise TypeError(f"{item!r} cannot go in a Chain: it is not a pedalboard plugin and lacks "
                        f"{' and '.join(missing) or 'a callable process'}; a Python processor needs "
                        "process(input_array, sample_rate, buffer_size=8192, reset=True) and latency_samples")
    return item


def processor_latency(item: Any, sample_rate_hz: int) -> int:
    """A Python processor's latency at ``sample_rate_hz`` (``latency_at`` if it has one)."""
    if hasattr(item, "latency_at"):
        return int(item.latency_at(sample_rate_hz))
    return int(item.latency_samples)


def _prime_layout(board: pedalboard.Pedalboard, audio: np.ndarray, sample_rate_hz: int) -> None:
    """Tell pedalboard that a square ``[C, C]`` block is channels-first (a no-op on its state)."""
    if audio.shape[0] == audio.shape[1]:
        board.process(np.zeros((audio.shape[0], 0), np.float32), sample_rate_hz, reset=False)


class _NativeStage:
    """Consecutive native plugins run as one ``pedalboard.Pedalboard``.

    pedalboard compensates its plugins' latency by withholding output: with ``reset=False`` a
    call may return fewer samples than it got, the rest arriving later. To give every call as
    many samples as it got, this stage queues the output behind ``prefill`` samples of silence,
    measured at the start of a stream by feeding silence (``prefill`` is the stage's streaming
    latency). If the plugins ever withhold more than that, the stage plays silence for the
    shortfall, grows its latency by as much and warns.

    pedalboard reads a block of fewer samples than channels (``[2, 1]``) as channels-last (two
    samples of one channel), so such blocks are held back until at least as many samples as
    channels have come; a stream that starts with them has that much more latency
    (``channels - block`` samples).
    """

    def __init__(self, plugins: list[pedalboard.Plugin]) -> None:
        self.board = pedalboard.Pedalboard(plugins)
        self.latency_samples = 0
        self._fifo: SampleFifo | None = None
        self._held: SampleFifo | None = None  # input too short for pedalboard to read unambiguously

    def reset(self) -> None:
        self.board.reset()
        self._fifo = self._held = None

    def aligned(self, audio: np.ndarray, sample_rate_hz: int, buffer_size: int) -> np.ndarray:
        _prime_layout(self.board, audio, sample_rate_hz)
        return self.board.process(audio, sample_rate_hz, buffer_size, reset=True)

    def measure_latency(self, sample_rate_hz: int, channels: int, block_samples: int, buffer_size: int) -> int:
        """Most samples the plugins withhold while fed silence in blocks of ``block_samples`` (resets them)."""
        self.board.reset()
        calls = min(max(math.ceil(sample_rate_hz / block_samples), 8), PROBE_MAX_CALLS)
        silence = np.zeros((channels, block_samples), np.float32)
        fed = returned = withheld = 0
        for _ in range(calls):
            _prime_layout(self.board, silence, sample_rate_hz)
            returned += self.board.process(silence, sample_rate_hz, buffer_size, reset=False).shape[-1]
            fed += block_samples
            withheld = max(withheld, fed - returned)
        self.board.reset()
        return withheld

    def start(self, sample_rate_hz: int, channels: int, block_samples: int, buffer_size: int) -> None:
        hold = max(channels - block_samples, 0)  # what short blocks wait for (see the class docstring)
        self.latency_samples = self.measure_latency(sample_rate_hz, channels, max(block_samples, channels),
                                                    buffer_size) + hold
        self._fifo = SampleFifo((channels,), self.latency_samples)
        self._held = SampleFifo((channels,))

    def step(self, audio: np.ndarray, sample_rate_hz: int, buffer_size: int) -> np.ndarray:
        n, channels = audio.shape[1], audio.shape[0]
        block = audio
        if self._held.available or n < channels:
            self._held.push(audio)
            block = self._held.pop(self._held.available) if self._held.available >= channels else audio[:, :0]
        if block.shape[1]:
            _prime_layout(self.board, block, sample_rate_hz)
            out = self.board.process(block, sample_rate_hz, buffer_size, reset=False)
            if out.shape[0] != channels:  # pedalboard gives [0, 0]-like shapes for empty output
                out = np.zeros((channels, 0), np.float32)
            self._fifo.push(out)
        short = n - self._fifo.available
        if short > 0:
            warnings.warn(f"{self.board!r} withheld {short} more sample(s) than measured at the stream's "
                          f"start; the chain's latency grows by {short}", RuntimeWarning, stacklevel=4)
            self.latency_samples += short
            head = self._fifo.pop(self._fifo.available)
            return np.concatenate([head, np.zeros((audio.shape[0], short), np.float32)], axis=1)
        return self._fifo.pop(audio.shape[1])


class _PythonStage:
    """One Python processor; its output must be as long as its input."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self._planar = hasattr(processor, "process_channels_first")

    def reset(self) -> None:
        if hasattr(self.processor, "reset"):
            self.processor.reset()

    def _call(self, audio: np.ndarray, sample_rate_hz: int, buffer_size: int, reset: bool) -> np.ndarray:
        if self._planar:
            out = self.processor.process_channels_first(audio, sample_rate_hz, buffer_size, reset)
        else:
            if audio.shape[1] <= audio.shape[0]:
                raise ValueError(f"{self.processor!r} takes pedalboard-style arrays, whose layout is ambiguous "
                                 f"for a block of {audio.shape[1]} sample(s) and {audio.shape[0]} channel(s): "
                                 "feed blocks longer than the channel count")
            out = self.processor.process(audio, sample_rate_hz, buffer_size, reset)
        out = np.asarray(out, dtype=np.float32)
        if out.shape != audio.shape:
            raise ValueError(f"{self.processor!r} returned shape {out.shape} for input {audio.shape}; a Python "
                             "processor in a Chain must return as many samples and channels as it is given")
        return out

    def aligned(self, audio: np.ndarray, sample_rate_hz: int, buffer_size: int) -> np.ndarray:
        return self._call(audio, sample_rate_hz, buffer_size, reset=True)

    def step(self, audio: np.ndarray, sample_rate_hz: int, buffer_size: int) -> np.ndarray:
        return self._call(audio, sample_rate_hz, buffer_size, reset=False)


class Chain(PedalboardProcessor):
    """Native pedalboard plugins and Python processors, in any order, with pedalboard's call shape.

    ``process(input_array, sample_rate, buffer_size=8192, reset=True)`` takes and returns what
    pedalboard does (1-D or 2-D, smaller dimension = channels, float32 out in the input's layout).
    ``reset=True`` runs each stage over the whole signal with its own latency compensated, so the
    output is aligned with the input and exactly what applying each processor by hand gives; the
    next ``reset=False`` call then starts a new stream. ``reset=False`` streams: each call
    returns as many samples as it got, delayed by :attr:`latency_samples` (the sum of the
    stages' latencies). Edit it like a list (``append``, ``insert``, indexing, ``del``, ``len``,
    iteration); an edit ends the current stream.
    """

    def __init__(self, processors: Iterable[object] = ()) -> None:
        self._items: list[object] = [check_processor(p) for p in processors]
        self._stages: list[_NativeStage | _PythonStage] | None = None
        self._stream: tuple[int, int] | None = None  # (sample rate, channels) of the running stream
        self._last_call: tuple[int, int, int, int] | None = None  # rate, channels, block, buffer_size
        self._latency_cache: dict[tuple[int, int, int, int], int] = {}  # measured once per key; cleared by reset/edits
        self.nonfinite_samples = 0  # NaN/inf input samples zeroed since construction or reset()

    # ------------------------------------------------------------------ list-like editing
    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[object]:
        return iter(list(self._items))

    def __getitem__(self, index: int | slice) -> object:
        return self._items[index]

    def __setitem__(self, index: int | slice, value: object) -> None:
        if isinstance(index, slice):
            self._items[index] = [check_processor(v) for v in value]
        else:
            self._items[index] = check_processor(value)
        self._edited()

    def __delitem__(self, index: int | slice) -> None:
        del self._items[index]
        self._edited()

    def append(self, processor: object) -> None:
        self._items.append(check_processor(processor))
        self._edited()

    def insert(self, index: int, processor: object) -> None:
        self._items.insert(index, check_processor(processor))
        self._edited()

    def remove(self, processor: object) -> None:
        self._items.remove(processor)
        self._edited()

    def _edited(self) -> None:
        self._stages = None
        self._stream = None
        self._latency_cache.clear()

    def __repr__(self) -> str:
        return "Chain([" + ", ".join(repr(p) for p in self._items) + "])"

    # ------------------------------------------------------------------ structure
    def stages(self) -> list[_NativeStage | _PythonStage]:
        """The chain split into runs of native plugins (one Pedalboard each) and Python processors."""
        if self._stages is None:
            stages: list[_NativeStage | _PythonStage] = []
            run: list[pedalboard.Plugin] = []
            for item in self._items:
                if is_native(item):
                    run.append(item)
                    continue
                if run:
                    stages.append(_NativeStage(run))
                    run = []
                stages.append(_PythonStage(item))
            if run:
                stages.append(_NativeStage(run))
            self._stages = stages
        return self._stages

    # ------------------------------------------------------------------ latency
    @property
    def latency_samples(self) -> int:
        """Latency of the running stream, or what a stream like the last call (its rate, channels,
        block and buffer size) has: measured once and cached, never during a stream."""
        if self._stream is not None:
            return self._stream_latency(self._stream[0])
        if self._last_call is None:
            raise RuntimeError("a Chain's latency depends on the sample rate: process audio first, or call "
                               "latency_at(sample_rate)")
        return self._measured_latency(*self._last_call)

    def latency_at(self, sample_rate: float, channels: int = 2, block_samples: int = 8192,
                   buffer_size: int = 8192) -> int:
        """Total latency at ``sample_rate`` in samples, as a stream started now would have it.

        Native segments are measured by feeding them silence in blocks of ``block_samples``
        (what pedalboard withholds can depend on the block size by a sample or so), which resets
        them; the figure is cached until :meth:`reset` or an edit. During a stream this returns the
        stream's own figure (and refuses another rate).
        """
        rate = check_sample_rate(sample_rate)
        if self._stream is not None:
            if self._stream[0] != rate:
                raise ValueError(f"a stream is running at {self._stream[0]} Hz: call reset() before asking "
                                 f"the latency at {rate} Hz")
            return self._stream_latency(rate)
        return self._measured_latency(rate, channels, block_samples, buffer_size)

    def _stream_latency(self, rate: int) -> int:
        return sum(s.latency_samples if isinstance(s, _NativeStage) else processor_latency(s.processor, rate)
                   for s in self.stages())

    def _measured_latency(self, rate: int, channels: int, block_samples: int, buffer_size: int) -> int:
        key = (rate, channels, block_samples, buffer_size)
        if key not in self._latency_cache:
            self._latency_cache[key] = sum(
                s.measure_latency(rate, channels, block_samples, buffer_size) if isinstance(s, _NativeStage)
                else processor_latency(s.processor, rate) for s in self.stages())
        return self._latency_cache[key]

    # ------------------------------------------------------------------ processing
    def reset(self) -> None:
        """Reset every processor, end the stream and forget the remembered channel layout."""
        for stage in self.stages():
            stage.reset()
        self._stream = None
        self._latency_cache.clear()
        self.nonfinite_samples = 0
        self.forget_layout()

    def process_channels_first(self, audio: np.ndarray, sample_rate: int, buffer_size: int = 8192,
                               reset: bool = True) -> np.ndarray:
        """:meth:`process` on checked ``[C, T]`` float32 audio (what an enclosing Chain calls).

        NaN/inf samples are replaced by zeros and counted in :attr:`nonfinite_samples` (with a warning).
        """
        audio = self.zero_nonfinite(check_planar(audio))
        self._last_call = (sample_rate, audio.shape[0], audio.shape[1], buffer_size)
        channels = audio.shape[0]
        if audio.shape[1] == 0:
            return audio.copy()
        if reset:
            self._stream = None
            for stage in self.stages():
                audio = stage.aligned(audio, sample_rate, buffer_size)
            return audio
        if self._stream is None:
            for stage in self.stages():
                stage.reset()
                if isinstance(stage, _NativeStage):
                    stage.start(sample_rate, channels, audio.shape[1], buffer_size)
            self._stream = (sample_rate, channels)
        elif self._stream != (sample_rate, channels):
            raise ValueError(f"this stream runs at {self._stream[0]} Hz with {self._stream[1]} channel(s), the "
                             f"block at {sample_rate} Hz with {channels}: call reset() (or pass reset=True) first")
        for stage in self.stages():
            audio = stage.step(audio, sample_rate, buffer_size)
        return audio
