"""``StemSeparator``: the streaming separator as a pedalboard-style processor, at any sample rate."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from model import DEFAULT_MODEL, RQVAESeparator, StreamingSeparator
from model import load as load_model
from rt.delays import LatencyBreakdown, latency_breakdown
from rt.mixer import StemMixer
from rt.pipeline import SeparationPipeline

from .layout import check_audio, check_planar, finite, from_planar, to_planar
from .processor import PedalboardProcessor, check_sample_rate

SEPARATE_CHUNK_SAMPLES = 65536  # host samples per step in separate(); bounds memory, not results
PIPELINE_BLOCK_SAMPLES = 8192   # most host samples one pipeline step takes (the size of its buffers)


class _HostStream:
    """One stream through the live engine's host-rate pipeline (:class:`rt.pipeline.SeparationPipeline`:
    resample, model frame step, full-band split, resample back, mix): ``[C, n] -> [K, C, n]``.

    With ``gains_db`` the ``K = 1`` output is the sum of the named stems, each scaled by its gain;
    without, ``K = S``: every stem of the model at 0 dB. Every call returns exactly ``n`` samples,
    the input delayed by ``latency_samples`` (a whole number of host samples: see
    :func:`rt.delays.output_delay_padding`).
    """

    def __init__(self, runtime: StreamingSeparator, host_rate_hz: int, channels: int, latency_samples: int,
                 max_block_samples: int, gains_db: Mapping[str, float] | None = None) -> None:
        every = gains_db is None
        mixer = StemMixer(runtime.stems, channels, host_rate_hz, stem_outputs=every)
        if not every:
            mixer.select(list(gains_db))
            for stem, gain in gains_db.items():
                mixer.set_gain_db(stem, gain)
        mixer.settle()  # the gains hold from the first sample: no ramp
        self.pipeline = SeparationPipeline(runtime, host_rate_hz, channels, max_block_samples, mixer)
        self.host_rate_hz = host_rate_hz
        self.channels = channels
        self.outputs = len(runtime.stems) if every else 1
        self.latency_samples = latency_samples

    def step(self, x: np.ndarray) -> np.ndarray:
        """``x [C, n]`` -> ``[K, C, n]`` delayed by ``latency_samples``."""
        return self.pipeline.process(x).reshape(self.outputs, self.channels, x.shape[1])

    def run_aligned(self, x: np.ndarray, buffer_size: int) -> np.ndarray:
        """Whole signal ``x [C, N]`` fed ``buffer_size`` samples at a time, from the stream's (reset)
        start -> ``[K, C, N]`` aligned with it."""
        out = np.empty((self.outputs, *x.shape), np.float32)
        done = 0
        for y in self.run_aligned_blocks(x[:, i:i + buffer_size] for i in range(0, x.shape[1], buffer_size)):
            out[..., done:done + y.shape[-1]] = y
            done += y.shape[-1]
        return out

    def run_aligned_blocks(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """One signal given as consecutive blocks ``[C, n]``, from the stream's (reset) start ->
        blocks ``[K, C, m]`` aligned with it, as many samples in all as came in.

        Feeds ``latency_samples`` of silence after the last block and drops as many from the front,
        so memory stays bounded by the block size whatever the signal's length.
        """
        skip = lat = self.latency_samples
        for x in itertools.chain(blocks, [np.zeros((self.channels, lat), np.float32)]):
            if x.shape[1] == 0:
                continue
            out = self.step(x)
            if skip:
                cut = min(skip, out.shape[-1])
                out, skip = out[..., cut:], skip - cut
            if out.shape[-1]:
                yield out


class StemSeparator(PedalboardProcessor):
    """A stem separator with pedalboard's call shape: the mix of the chosen stems, or every stem.

    ``process(input_array, sample_rate, buffer_size=8192, reset=True)`` takes what pedalboard
    takes (1-D mono, or 2-D with the smaller dimension as channels; float32 or float64; any
    whole-number sample rate: audio is resampled to the model's rate and back) and returns the
    sum of the selected stems, each scaled by its gain, as float32 in the input's layout.

    - ``reset=True`` (default): the processor is reset, and the output is aligned with the input
      and as long as it (the latency is compensated, as pedalboard does for its own plugins).
    - ``reset=False``: streaming; consecutive calls continue one stream and each returns as many
      samples as it was given, delayed by :attr:`latency_samples`. The sample rate and channel
      count cannot change within a stream (call :meth:`reset`).

    The audio runs through the live engine's pipeline (:class:`rt.pipeline.SeparationPipeline`),
    so a file and a live stream are separated by the same code. ``buffer_size`` is how many
    samples are fed at a time; it changes speed, not the result. The delay is a whole number of
    samples at every rate (the output resampler is padded to make it so), ``latency_samples``
    exactly (see :meth:`latency_breakdown`). Empty input returns empty output of the same shape.
    Integer arrays and 3-D arrays are refused with an error that says what to do. NaN or
    infinite samples are replaced by zeros and counted in :attr:`nonfinite_samples` (with a
    warning), so they never reach the recurrent model's state.

    Args:
        source: a shipped model's name, a checkpoint directory, a loaded
            :class:`model.StreamingSeparator`, or an :class:`model.RQVAESeparator`.
        stems: names of the stems summed into the output (default: all of the model's stems).
        gains_db: per-stem gain in dB, a mapping ``{stem: dB}`` (missing stems: 0 dB) or a
            sequence aligned with ``stems``.
        device: ``"cpu"`` or ``"cuda"``, used when loading ``source``.
        n_q: number of quantizers used when loading ``source`` (default: all).
        backend: ``"auto"`` (numba on the CPU), ``"torch"`` (faster for whole files on the CPU) or
            ``"numba"``, used when loading ``source`` from a name, folder or ``RQVAESeparator``.
    """

    def __init__(self, source: str | Path | StreamingSeparator | RQVAESeparator = DEFAULT_MODEL,
                 stems: Sequence[str] | str | None = None,
                 gains_db: Mapping[str, float] | Sequence[float] | None = None,
                 device: str = "cpu", n_q: int | None = None, backend: str = "auto") -> None:
        self.runtime = _load_runtime(source, device, n_q, backend)
        self.stems: tuple[str, ...] = _check_stems(self.runtime, stems)
        self.gains_db: dict[str, float] = _check_gains(self.stems, gains_db)
        self._last_rate_hz = self.runtime.sample_rate_hz
        self._stream: _HostStream | None = None
        self._latency_by_rate: dict[int, LatencyBreakdown] = {}  # the runtime never changes: computed once per rate
        self.nonfinite_samples = 0  # NaN/inf input samples zeroed since construction or reset()

    # ------------------------------------------------------------------ properties
    @property
    def model_stems(self) -> tuple[str, ...]:
        """Every stem the model emits, in its order (``separate`` returns all of them)."""
        return self.runtime.stems

    @property
    def sample_rate_hz(self) -> int:
        """The model's own rate (audio at other rates is resampled to it and back)."""
        return self.runtime.sample_rate_hz

    @property
    def latency_samples(self) -> int:
        """Latency at the sample rate of the last ``process`` call (the model's rate before any)."""
        return self.latency_at(self._last_rate_hz)

    def latency_at(self, sample_rate: float) -> int:
        """Latency in samples at ``sample_rate``: resamplers and model frame, rounded to a sample."""
        return int(round(self.latency_breakdown(sample_rate).engine_samples))

    def latency_breakdown(self, sample_rate: float) -> LatencyBreakdown:
        """The exact (fractional) delay at ``sample_rate`` split into resampler and model parts."""
        rate = check_sample_rate(sample_rate)
        if rate not in self._latency_by_rate:
            self._latency_by_rate[rate] = latency_breakdown(self.runtime, rate)
        return self._latency_by_rate[rate]

    def mix_weights(self) -> np.ndarray:
        """Linear weight of each of the model's stems in the output ``[S]`` (0 for unselected)."""
        return np.array([10.0 ** (self.gains_db[s] / 20.0) if s in self.gains_db else 0.0
                         for s in self.runtime.stems], np.float32)

    # ------------------------------------------------------------------ processing
    def reset(self) -> None:
        """Forget the stream, the remembered channel layout and the count of zeroed samples."""
        self.runtime.reset()
        self._stream = None
        self.nonfinite_samples = 0
        self.forget_layout()

    def process_channels_first(self, audio: np.ndarray, sample_rate: int, buffer_size: int = 8192,
                               reset: bool = True) -> np.ndarray:
        """:meth:`process` on checked ``[C, T]`` float32 audio (what :class:`Chain` calls); NaN/inf zeroed."""
        audio = self.zero_nonfinite(check_planar(audio))
        channels = audio.shape[0]
        if reset:
            self._stream = None
            stream = self._new_stream(sample_rate, channels, min(buffer_size, PIPELINE_BLOCK_SAMPLES), self.gains_db)
            out = stream.run_aligned(audio, buffer_size)[0]
            self.runtime.reset()
            return out
        stream = self._streaming(sample_rate, channels, buffer_size)
        pieces = [stream.step(audio[:, i:i + buffer_size])[0] for i in range(0, audio.shape[1], buffer_size)]
        return np.concatenate(pieces, axis=-1)

    def separate(self, audio: np.ndarray, sample_rate: float) -> dict[str, np.ndarray]:
        """Every one of the model's stems of a whole signal, aligned with it and in its layout.

        Gains and the stem selection do not apply. Resets the processor before and after; NaN/inf
        input samples are zeroed and counted in :attr:`nonfinite_samples` (with a warning).
        """
        audio = check_audio(audio)
        rate = check_sample_rate(sample_rate)
        if audio.size == 0:
            return {s: np.zeros(audio.shape, np.float32) for s in self.runtime.stems}
        planar = to_planar(audio, self._last_layout)
        stems = np.empty((len(self.runtime.stems), *planar.audio.shape), np.float32)  # [S, C, T]
        done = 0
        for block in self.separate_blocks([planar.audio], rate):
            stems[..., done:done + block.shape[-1]] = block
            done += block.shape[-1]
        return {name: from_planar(stems[i], planar.layout) for i, name in enumerate(self.runtime.stems)}

    def separate_blocks(self, blocks: Iterable[np.ndarray], sample_rate: float) -> Iterator[np.ndarray]:
        """Every stem of one signal given block by block: ``[C, n]`` float blocks in, ``[S, C, m]`` out.

        The output blocks are aligned with the input and as long in all; memory is bounded by the
        block size, so a file of any length can be streamed through (``plugin_host.batch`` does).
        Blocks are split at :data:`SEPARATE_CHUNK_SAMPLES`. NaN/inf samples are zeroed (in a copy)
        and counted in :attr:`nonfinite_samples`. Resets the processor before and
        after; the channel count is the first block's.
        """
        rate = check_sample_rate(sample_rate)
        self.reset()
        self._last_rate_hz = rate
        stream: _HostStream | None = None
        zeroed = 0

        def checked() -> Iterator[np.ndarray]:
            nonlocal stream, zeroed
            for block in blocks:
                block = check_planar(block)
                if stream is None:
                    stream = self._new_stream(rate, block.shape[0], PIPELINE_BLOCK_SAMPLES)
                elif block.shape[0] != stream.channels:
                    raise ValueError(f"block of {block.shape[0]} channel(s) in a signal of {stream.channels}: "
                                     "every block of one signal needs the same channel count")
                block, count = finite(block)
                zeroed += count
                for i in range(0, block.shape[1], SEPARATE_CHUNK_SAMPLES):
                    yield block[:, i:i + SEPARATE_CHUNK_SAMPLES]

        source = checked()
        first = next(source, None)
        if first is None:
            return
        yield from stream.run_aligned_blocks(itertools.chain([first], source))
        self.reset()
        self._last_rate_hz = rate
        self.count_nonfinite(zeroed)

    def _new_stream(self, sample_rate: int, channels: int, max_block_samples: int,
                    gains_db: Mapping[str, float] | None = None) -> _HostStream:
        """A stream from a reset state at ``sample_rate`` (every stem when ``gains_db`` is None)."""
        self.runtime.reset()
        self._last_rate_hz = sample_rate
        return _HostStream(self.runtime, sample_rate, channels, self.latency_at(sample_rate), max_block_samples,
                           gains_db)

    def _streaming(self, sample_rate: int, channels: int, buffer_size: int) -> _HostStream:
        stream = self._stream
        if stream is None:
            stream = self._stream = self._new_stream(sample_rate, channels, min(buffer_size, PIPELINE_BLOCK_SAMPLES),
                                                     self.gains_db)
        elif stream.host_rate_hz != sample_rate:
            raise ValueError(f"this stream runs at {stream.host_rate_hz} Hz but the block came at {sample_rate} Hz; "
                             "call reset() (or pass reset=True) before changing the sample rate")
        elif stream.channels != channels:
            raise ValueError(f"this stream has {stream.channels} channel(s) but the block has {channels}; "
                             "call reset() (or pass reset=True) before changing the channel count")
        return stream

    def __repr__(self) -> str:
        gains = ", ".join(f"{s}={g:+.1f} dB" for s, g in self.gains_db.items())
        return f"<StemSeparator stems: {gains}; model rate {self.sample_rate_hz} Hz>"


def _load_runtime(source: object, device: str, n_q: int | None, backend: str) -> StreamingSeparator:
    if isinstance(source, StreamingSeparator):
        return source
    if isinstance(source, RQVAESeparator):
        return StreamingSeparator(source, device=device, n_q=n_q, backend=backend)
    if isinstance(source, (str, Path)):
        return load_model(source, device=device, n_q=n_q, backend=backend)
    raise TypeError(f"source must be a model name, a checkpoint directory, a StreamingSeparator or an "
                    f"RQVAESeparator, got {type(source).__name__}")


def _check_stems(runtime: StreamingSeparator, stems: Sequence[str] | str | None) -> tuple[str, ...]:
    if stems is None:
        return runtime.stems
    names = (stems,) if isinstance(stems, str) else tuple(stems)
    if not names:
        raise ValueError(f"stems is empty: name at least one of {', '.join(runtime.stems)} (or pass None for all)")
    for name in names:
        runtime.stem_index(name)  # raises naming the model's stems
    if len(set(names)) != len(names):
        raise ValueError(f"stems {names} name a stem twice")
    return names


def _check_gains(stems: tuple[str, ...], gains_db: Mapping[str, float] | Sequence[float] | None) -> dict[str, float]:
    if gains_db is None:
        pairs = {s: 0.0 for s in stems}
    elif isinstance(gains_db, Mapping):
        unknown = sorted(set(gains_db) - set(stems))
        if unknown:
            raise ValueError(f"gains_db names {unknown}, which are not among the selected stems {list(stems)}")
        pairs = {s: gains_db.get(s, 0.0) for s in stems}
    else:
        values = list(gains_db)
        if len(values) != len(stems):
            raise ValueError(f"gains_db has {len(values)} value(s) for {len(stems)} stem(s) {list(stems)}")
        pairs = dict(zip(stems, values))
    for stem, gain in pairs.items():
        if not isinstance(gain, (int, float, np.floating, np.integer)) or not math.isfinite(gain):
            raise ValueError(f"gain of {stem!r} must be a finite number of dB, got {gain!r}")
    return {s: float(g) for s, g in pairs.items()}
