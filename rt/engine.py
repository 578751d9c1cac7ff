"""``Engine``: the real-time engine, in one of two modes over one pipeline (:mod:`rt.pipeline`).

**callback mode** (the default on the CPU): the audio callback itself runs the pipeline (input
resampler, numba frame step, output resampler, mixer) over preallocated arrays. No prefill, no
worker: the engine's latency is the resamplers' plus the model's own. The callback allocates
nothing, takes no lock, prints nothing and never touches torch.

**worker mode** (a torch model, e.g. CUDA, or a model too slow for the callback): the
callback only copies the device's input block into the input ring and the output ring into
the device's output block, then wakes an inference worker thread through a non-blocking pipe
write; the worker runs the same pipeline. The output ring starts with ``prefill_samples`` of
silence that absorbs the worker's jitter (part of the latency).

**auto** chooses before the stream starts (see :func:`choose_mode`): callback mode when the
separator has a numba frame step and the measured p99 of one block's compute is at most
``CALLBACK_LOAD_LIMIT`` of the block's period, else worker mode.

Worker-mode underrun policy: when the worker has not produced a block in time, the callback
plays **silence** for the missing samples (the ring zero-fills them) and they are counted. The
worker then drops exactly that many samples from the front of its next output, so every
output sample keeps its place on the timeline: latency stays ``latency().engine_samples``
and callback input and output sample counts stay equal (no drift). Input the worker could not
take in time (input ring full) is dropped, counted, and stands in for the output it would
have made.
"""
from __future__ import annotations

import collections
import math
import os
import select
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from model import StreamingSeparator

from .delays import LatencyBreakdown, latency_breakdown
from .mixer import StemMixer
from .pipeline import SeparationPipeline
from .pipeline import warmup as warmup_pipeline
from .ring import RingBuffer
from .ring import warmup as warmup_ring

TIMING_HISTORY = 4096      # per-block timings kept for profilers
RING_SECONDS = 2.0         # capacity of each ring (worker mode)
MODES = ("auto", "callback", "worker")
CALLBACK_LOAD_LIMIT = 0.5  # auto: callback mode when p99 block compute <= this share of the block's period
MEASURE_SECONDS = 1.0      # audio (noise) timed through the pipeline before choosing a mode
MEASURE_MIN_BLOCKS = 200


class BlockTiming(NamedTuple):
    """Compute time of one block (a callback in callback mode, a worker chunk in worker mode), wall clock."""

    host_samples: int       # input samples the block took
    pipeline_ms: float      # resample, separate, mix, resample
    total_ms: float         # the above plus ring copies and bookkeeping


@dataclass(frozen=True)
class EngineStats:
    """Counters of a running (or finished) engine, in host samples."""

    samples_in: int            # taken by the callback
    samples_out: int           # given by the callback
    underrun_samples: int      # played as silence because the output was not ready (worker late)
    dropped_input_samples: int  # lost because the input ring was full (worker mode)
    skipped_output_samples: int  # dropped by the worker to stay on the timeline after underruns
    worker_steps: int
    load: float                # compute time / audio time over the recent blocks
    callbacks: int = 0         # audio callbacks so far
    late_callbacks: int = 0    # callback mode: callbacks whose compute exceeded their block's period
    nonfinite_samples: int = 0  # NaN/inf input samples replaced by zeros


@dataclass(frozen=True)
class ModeDecision:
    """Which mode the engine runs and why (``compute_*``: one block through the pipeline, measured)."""

    mode: str                   # "callback" or "worker"
    requested: str              # "auto", "callback" or "worker"
    reason: str
    period_ms: float            # the block's duration
    compute_p99_ms: float       # CPU time; NaN when not measured (worker requested, or no numba frame step)
    compute_mean_ms: float


class BlockSizeError(ValueError):
    """The engine cannot serve this block size (in the requested mode) on this machine."""


def choose_mode(requested: str, allocation_free: bool, period_ms: float, compute_p99_ms: float,
                compute_mean_ms: float) -> ModeDecision:
    """The mode rule (pure, tested).

    - ``worker`` requested: worker. A separator without a numba frame step (torch backend,
      e.g. CUDA) cannot run in the callback: ``auto`` gives worker, ``callback`` is an error.
    - Mean compute above the period: no mode keeps up; :class:`BlockSizeError`.
    - ``callback`` requested: callback, unless the p99 exceeds the period (the callback would
      miss deadlines): :class:`BlockSizeError` naming a block that fits.
    - ``auto``: callback when ``compute_p99_ms <= CALLBACK_LOAD_LIMIT * period_ms``, else worker.

    The engine measures ``compute_*`` as the CPU time of one block through the pipeline (noise,
    ``MEASURE_SECONDS`` of audio, at least ``MEASURE_MIN_BLOCKS`` blocks) before any stream starts.
    """
    if requested not in MODES:
        raise ValueError(f"unknown engine mode {requested!r}; choose from {', '.join(MODES)}")
    nan = float("nan")
    if requested == "worker":
        return ModeDecision("worker", requested, "requested", period_ms, compute_p99_ms, compute_mean_ms)
    if not allocation_free:
        if requested == "callback":
            raise ValueError("callback mode runs the numba frame step (a CPU separator with backend 'numba'); "
                             "this separator runs torch: use mode 'worker' (or 'auto')")
        return ModeDecision("worker", requested, "no numba frame step (torch backend): the worker runs it",
                            period_ms, nan, nan)
    if compute_mean_ms > period_ms:
        raise BlockSizeError(f"the pipeline needs {compute_mean_ms:.2f} ms on average per {period_ms:.2f} ms block: "
                             "slower than real time on this machine in any mode; use a smaller model "
                             "(or a GPU with --device cuda)")
    if requested == "callback":
        if compute_p99_ms > period_ms:
            raise BlockSizeError(f"a block of {period_ms:.2f} ms is shorter than the callback's measured p99 compute "
                                 f"({compute_p99_ms:.2f} ms): the callback would miss deadlines; use a larger block "
                                 "(--blocksize, or a longer JACK period) or mode 'worker' with a prefill")
        return ModeDecision("callback", requested, "requested", period_ms, compute_p99_ms, compute_mean_ms)
    if compute_p99_ms <= CALLBACK_LOAD_LIMIT * period_ms:
        return ModeDecision("callback", requested, f"p99 compute {compute_p99_ms:.2f} ms <= "
                            f"{CALLBACK_LOAD_LIMIT:g} x period {period_ms:.2f} ms", period_ms, compute_p99_ms,
                            compute_mean_ms)
    return ModeDecision("worker", requested, f"p99 compute {compute_p99_ms:.2f} ms > {CALLBACK_LOAD_LIMIT:g} x "
                        f"period {period_ms:.2f} ms", period_ms, compute_p99_ms, compute_mean_ms)


class Engine:
    """The real-time stem separation engine at the host's rate, mono or stereo.

    Args:
        runtime: the model runtime (its own device: CPU or CUDA).
        host_rate_hz: the device's sample rate (44.1, 48, 96 kHz, or the model's rate).
        channels: 1 or 2 device channels (in and out).
        block_samples: the device's block size (callbacks may bring other sizes: longer
            blocks are processed in pieces of this size).
        prefill_samples: worker mode: silence the output ring starts with (default two
            blocks, at least two model frames in host samples). Callback mode has none.
        stems: the stems heard at start (default all); with ``stem_outputs`` each of them gets
            its own ``channels`` output channels, in this order.
        ramp_ms: length of the mixer's gain ramps.
        input_ring_samples: worker mode: size of the input ring (default 2 s, as the output ring).
        torch_threads: intra-op threads of the worker's torch calls (1 suits small blocks on CPU).
        mode: ``auto`` (default), ``callback`` or ``worker`` (see :func:`choose_mode`); decided
            here, before any stream starts, by timing the pipeline on noise.
    """

    def __init__(self, runtime: StreamingSeparator, host_rate_hz: int, channels: int, block_samples: int,
                 prefill_samples: int | None = None, stems: Sequence[str] | None = None,
                 stem_outputs: bool = False, ramp_ms: float = 10.0, input_ring_samples: int | None = None,
                 torch_threads: int = 1, mode: str = "auto") -> None:
        if channels not in (1, 2):
            raise ValueError(f"the engine runs mono or stereo devices (1 or 2 channels), got {channels}")
        if block_samples < 1:
            raise ValueError(f"block_samples must be >= 1, got {block_samples}")
        if mode not in MODES:
            raise ValueError(f"unknown engine mode {mode!r}; choose from {', '.join(MODES)}")
        self.runtime = runtime
        self.torch_threads = torch_threads
        self.host_rate_hz = int(host_rate_hz)
        self.model_rate_hz = runtime.sample_rate_hz
        self.channels = channels
        self.block_samples = int(block_samples)
        self.mixer = StemMixer(runtime.stems, channels, self.host_rate_hz, ramp_ms=ramp_ms,
                               stem_outputs=stem_outputs, output_stems=stems)
        if stems is not None:
            self.mixer.select(stems)
        self.output_channels = self.mixer.output_channels
        torch.set_num_threads(self.torch_threads)
        warmup_ring()
        warmup_pipeline()
        self.pipeline = SeparationPipeline(runtime, self.host_rate_hz, channels, self.block_samples, self.mixer)
        self.decision = self._decide(mode)
        self.mode = self.decision.mode
        frame_host = math.ceil(runtime.frame_size * self.host_rate_hz / self.model_rate_hz)
        if self.mode == "callback":
            self.pipeline.run_in_callback()
            self.prefill_samples = 0
        elif prefill_samples is None:
            self.prefill_samples = 2 * max(self.block_samples, frame_host)
        else:
            self.prefill_samples = int(prefill_samples)
        capacity = max(int(RING_SECONDS * self.host_rate_hz), 8 * self.block_samples + self.prefill_samples)
        if self.prefill_samples >= capacity // 2:
            raise ValueError(f"prefill_samples {self.prefill_samples} must be below half the ring capacity "
                             f"{capacity}; use a shorter prefill")
        self.in_ring = RingBuffer(channels, input_ring_samples or capacity)
        self.out_ring = RingBuffer(self.output_channels, capacity)
        self._work = np.zeros((channels, self.block_samples), np.float32)
        self._y = np.zeros((self.output_channels, self.block_samples), np.float32)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._wake_byte = b"\x00"
        # per-block timings, preallocated (the callback writes them): samples, pipeline ms, total ms
        self._t_samples = np.zeros(TIMING_HISTORY, np.int64)
        self._t_pipeline_ms = np.zeros(TIMING_HISTORY)
        self._t_total_ms = np.zeros(TIMING_HISTORY)
        self._blocks = 0            # blocks timed so far (index into the timing arrays, modulo)
        self._callbacks = 0
        self._cb_samples = 0        # callback mode: samples in (= out)
        self._late = 0
        self._skipped = 0       # pipeline output samples dropped because they were late
        self._pipeline_out = 0  # output samples the pipeline has produced
        self._drops_seen = 0    # input ring overflows as of the worker's last read
        self._steps = 0
        self._thread: threading.Thread | None = None
        self._running = False
        self.error: BaseException | None = None  # what stopped the worker, if anything
        self._ready = False
        self._callback_mode = self.mode == "callback"
        self._period_s = self.block_samples / self.host_rate_hz

    def _decide(self, requested: str) -> ModeDecision:
        period_ms = 1000.0 * self.block_samples / self.host_rate_hz
        nan = float("nan")
        if requested == "worker" or not self.pipeline.allocation_free:
            return choose_mode(requested, self.pipeline.allocation_free, period_ms, nan, nan)
        times = self._time_blocks()
        return choose_mode(requested, True, period_ms, float(np.percentile(times, 99)), float(times.mean()))

    def _time_blocks(self) -> np.ndarray:
        """CPU time (ms, this thread's) of each block of noise through the pipeline; then resets it.

        CPU time, not wall time: it is the block's own cost, which decides whether the model
        fits in the callback; time the scheduler gives other processes on a shared machine
        would make the choice random (and no mode removes it: JACK counts it as xruns)."""
        n = self.block_samples
        blocks = max(MEASURE_MIN_BLOCKS, math.ceil(MEASURE_SECONDS * self.host_rate_hz / n))
        rng = np.random.default_rng(0)
        indata = (0.1 * rng.standard_normal((n, self.channels))).astype(np.float32)
        outdata = np.zeros((n, self.output_channels), np.float32)
        times = np.empty(blocks)
        for i in range(blocks + 20):
            t0 = time.thread_time()
            self.pipeline.process_frames(indata, outdata)
            if i >= 20:  # past the warm-up
                times[i - 20] = time.thread_time() - t0
        self.pipeline.reset()
        return 1000.0 * times

    # ------------------------------------------------------------------ latency and stats
    def latency(self, host_input_samples: float = 0.0, host_output_samples: float = 0.0) -> LatencyBreakdown:
        """The latency split into its parts; pass the device's own latencies (PortAudio's report)."""
        return latency_breakdown(self.runtime, self.host_rate_hz, self.prefill_samples, host_input_samples,
                                 host_output_samples)

    def stats(self) -> EngineStats:
        recent = self.timings()[-64:]
        audio_ms = sum(t.host_samples for t in recent) * 1000.0 / self.host_rate_hz
        compute_ms = sum(t.total_ms for t in recent)
        load = compute_ms / audio_ms if audio_ms else 0.0
        if self._callback_mode:
            return EngineStats(samples_in=self._cb_samples, samples_out=self._cb_samples,
                               underrun_samples=self.pipeline.shortfall_samples, dropped_input_samples=0,
                               skipped_output_samples=0, worker_steps=0, load=load, callbacks=self._callbacks,
                               late_callbacks=self._late, nonfinite_samples=self.pipeline.nonfinite_samples)
        return EngineStats(
            samples_in=self.in_ring.total_written + self.in_ring.overflows,
            samples_out=self.out_ring.total_read + self.out_ring.underflows,
            underrun_samples=self.out_ring.underflows, dropped_input_samples=self.in_ring.overflows,
            skipped_output_samples=self._skipped, worker_steps=self._steps, load=load, callbacks=self._callbacks,
            nonfinite_samples=self.pipeline.nonfinite_samples)

    @property
    def samples_in(self) -> int:
        """Input samples the callback has taken (both modes)."""
        if self._callback_mode:
            return self._cb_samples
        return self.in_ring.total_written + self.in_ring.overflows

    @property
    def blocks_timed(self) -> int:
        """Blocks timed since creation (``timings()`` keeps the last ``TIMING_HISTORY``)."""
        return self._blocks

    def timings(self) -> list[BlockTiming]:
        """Recent per-block compute timings, oldest first (a copy: profilers read, never write)."""
        count = min(self._blocks, TIMING_HISTORY)
        order = [(self._blocks - count + k) % TIMING_HISTORY for k in range(count)]
        return [BlockTiming(int(self._t_samples[i]), float(self._t_pipeline_ms[i]), float(self._t_total_ms[i]))
                for i in order]

    # ------------------------------------------------------------------ lifecycle
    def prepare(self) -> None:
        """Compile every numba kernel, reset the pipeline, prefill the output ring (worker mode).
        Call before a stream starts.

        Also sets the calling thread's torch intra-op threads to ``torch_threads`` (the file
        driver runs the worker's step in the calling thread).
        """
        torch.set_num_threads(self.torch_threads)
        warmup_ring()
        warmup_pipeline()
        self.pipeline.reset()
        self.mixer.settle()
        if not self._ready:
            if not self._callback_mode:
                self.out_ring.write(np.zeros((self.output_channels, self.prefill_samples), np.float32))
            self._ready = True

    def start(self) -> None:
        """``prepare()`` and, in worker mode, start the worker thread."""
        self.prepare()
        if self._callback_mode:
            return
        self._running = True
        self._thread = threading.Thread(target=self._worker, name="stemstream-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker thread (the stream must be stopped first or it will underrun)."""
        self._running = False
        if self._thread is not None:
            self._wake()
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self) -> None:
        self.stop()
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)

    # ------------------------------------------------------------------ audio thread
    def callback(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """The audio callback's work: ``indata [n, C]`` in, ``outdata [n, C_out]`` out (float32, frame-major).

        Callback mode: the whole pipeline, over preallocated arrays. Worker mode: ring copies
        and a wake-up. Never waits, allocates arrays, locks, prints or touches torch.
        """
        t0 = time.perf_counter()
        n = indata.shape[0]
        if self._callback_mode:
            self.pipeline.process_frames(indata, outdata)
            self._cb_samples += n
        else:
            self.in_ring.write_frames(indata)
            self.out_ring.read_frames_into(outdata)
            self._wake()
        self._callbacks += 1
        if self._callback_mode:
            elapsed = time.perf_counter() - t0
            if elapsed > n / self.host_rate_hz:
                self._late += 1
            i = self._blocks % TIMING_HISTORY
            self._t_samples[i] = n
            self._t_pipeline_ms[i] = self._t_total_ms[i] = 1000.0 * elapsed
            self._blocks += 1

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, self._wake_byte)
        except BlockingIOError:  # the pipe is full: the worker is awake already
            pass

    # ------------------------------------------------------------------ worker thread
    def _worker(self) -> None:
        # torch's intra-op thread count is per thread: a new thread gets the default team,
        # which on a busy machine makes tiny per-block matmuls ~50x slower
        torch.set_num_threads(self.torch_threads)
        try:
            while self._running:
                ready, _, _ = select.select([self._wake_read], [], [], 0.1)
                if ready:
                    os.read(self._wake_read, 4096)
                self.step()
        except BaseException as exc:  # keep the stream alive (it plays silence) and say why
            self.error = exc

    def step(self) -> int:
        """Worker mode: process all input waiting in the input ring (the worker's body); returns
        host samples taken. Callback mode: nothing to do (returns 0)."""
        if self._callback_mode:
            return 0
        available = self.in_ring.available
        if available == 0:
            return 0
        # input dropped while the ring was full lies after everything in the ring at that time:
        # drops seen up to the previous read precede this input, later ones follow it
        drops_before, self._drops_seen = self._drops_seen, self.in_ring.overflows
        done = 0
        while done < available:
            n = min(self.block_samples, available - done)
            t0 = time.perf_counter()
            x = self._work[:, :n]
            self.in_ring.read_into(x)
            t1 = time.perf_counter()
            self.pipeline.process_into(x, n, self._y)
            t2 = time.perf_counter()
            self._write_on_timeline(self._y[:, :n], drops_before)
            t3 = time.perf_counter()
            i = self._blocks % TIMING_HISTORY
            self._t_samples[i] = n
            self._t_pipeline_ms[i] = 1000.0 * (t2 - t1)
            self._t_total_ms[i] = 1000.0 * (t3 - t0)
            self._blocks += 1
            done += n
        self._steps += 1
        return available

    def _write_on_timeline(self, y: np.ndarray, drops_before: int) -> None:
        """Write ``y [C_out, m]`` so each sample is played at its place on the output timeline.

        Pipeline output ``k`` belongs at timeline position ``prefill + k + D`` (``D``: input
        samples dropped before the input block that made ``y``); the sample at ring index ``W`` plays at ``W + U`` (``U``:
        underrun samples before it). Late samples (behind the timeline) are skipped; gaps
        (dropped input, or output the ring could not take) are filled with silence.
        """
        target = self.prefill_samples + self._pipeline_out + drops_before - self.out_ring.underflows
        ahead = self.out_ring.total_written - target
        if ahead < 0:
            self.out_ring.write(np.zeros((self.output_channels, -ahead), np.float32))
            ahead = 0
        skip = min(ahead, y.shape[1])
        self._skipped += skip
        self._pipeline_out += y.shape[1]
        self.out_ring.write(np.ascontiguousarray(y[:, skip:]))
