"""``Engine``: input ring -> inference worker (resample, separate, mix, resample) -> output ring.

The audio callback (:meth:`Engine.callback`) only copies the device's input block into the
input ring and the output ring into the device's output block (numba kernels over
preallocated arrays), then wakes the worker through a non-blocking pipe write. It never waits.

Underrun policy: when the worker has not produced a block in time, the callback plays
**silence** for the missing samples (the ring zero-fills them) and they are counted. The
worker then drops exactly that many samples from the front of its next output, so every
output sample keeps its place on the timeline: latency stays ``latency().engine_samples``
and callback input and output sample counts stay equal (no drift). Input the worker could not
take in time (input ring full) is dropped, counted, and stands in for the output it would
have made.
"""
from __future__ import annotations

import collections
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

from .latency import LatencyBreakdown
from .mixer import StemMixer
from .resample import StreamingResampler
from .resample import warmup as warmup_resampler
from .ring import RingBuffer
from .ring import warmup as warmup_ring

TIMING_HISTORY = 4096      # per-block timings kept for profilers
RING_SECONDS = 2.0         # capacity of each ring


class BlockTiming(NamedTuple):
    """Compute time of one worker step (wall clock, ms) beside the audio it handled."""

    host_samples: int       # input samples taken from the ring
    model_samples: int      # samples at the model's rate
    resample_in_ms: float
    model_ms: float
    mix_ms: float
    resample_out_ms: float
    total_ms: float         # the four above plus ring copies and bookkeeping


@dataclass(frozen=True)
class EngineStats:
    """Counters of a running (or finished) engine, in host samples."""

    samples_in: int            # taken by the callback
    samples_out: int           # given by the callback
    underrun_samples: int      # played as silence because the worker was late
    dropped_input_samples: int  # lost because the input ring was full
    skipped_output_samples: int  # dropped by the worker to stay on the timeline after underruns
    worker_steps: int
    load: float                # compute time / audio time over the recent steps


class Engine:
    """The real-time stem separation engine at the host's rate, mono or stereo.

    Args:
        separator: the model runtime (its own device: CPU or CUDA).
        host_rate_hz: the device's sample rate (44.1, 48, 96 kHz, or the model's rate).
        channels: 1 or 2 device channels (in and out).
        block_samples: the device's block size.
        prefill_samples: silence the output ring starts with (default two blocks).
        stems: the stems heard at start (default all); with ``stem_outputs`` each of them gets
            its own ``channels`` output channels, in this order.
        ramp_ms: length of the mixer's gain ramps.
        input_ring_samples: size of the input ring (default 2 s, as the output ring).
        torch_threads: intra-op threads of the worker's torch calls (1 suits small blocks on CPU).
    """

    def __init__(self, separator: StreamingSeparator, host_rate_hz: int, channels: int, block_samples: int,
                 prefill_samples: int | None = None, stems: Sequence[str] | None = None,
                 stem_outputs: bool = False, ramp_ms: float = 10.0, input_ring_samples: int | None = None,
                 torch_threads: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError(f"the engine runs mono or stereo devices (1 or 2 channels), got {channels}")
        if block_samples < 1:
            raise ValueError(f"block_samples must be >= 1, got {block_samples}")
        self.separator = separator
        self.torch_threads = torch_threads
        self.host_rate_hz = int(host_rate_hz)
        self.model_rate_hz = separator.sample_rate_hz
        self.channels = channels
        self.block_samples = int(block_samples)
        self.prefill_samples = 2 * self.block_samples if prefill_samples is None else int(prefill_samples)
        self.mixer = StemMixer(separator.stems, channels, self.model_rate_hz, ramp_ms=ramp_ms,
                               stem_outputs=stem_outputs, output_stems=stems)
        if stems is not None:
            self.mixer.select(stems)
        self.output_channels = self.mixer.output_channels
        self._resample_in = StreamingResampler(self.host_rate_hz, self.model_rate_hz, channels)
        self._resample_out = StreamingResampler(self.model_rate_hz, self.host_rate_hz, self.output_channels)
        capacity = max(int(RING_SECONDS * self.host_rate_hz), 8 * self.block_samples + self.prefill_samples)
        if self.prefill_samples >= capacity // 2:
            raise ValueError(f"prefill_samples {self.prefill_samples} must be below half the ring capacity "
                             f"{capacity}; use a shorter prefill")
        self.in_ring = RingBuffer(channels, input_ring_samples or capacity)
        self.out_ring = RingBuffer(self.output_channels, capacity)
        self._work = np.zeros((channels, self.in_ring.capacity), np.float32)
        self._dry_history = np.zeros((channels, separator.latency_samples), np.float32)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._wake_byte = b"\x00"
        self._timings: collections.deque[BlockTiming] = collections.deque(maxlen=TIMING_HISTORY)
        self._skipped = 0       # pipeline output samples dropped because they were late
        self._pipeline_out = 0  # output samples the pipeline has produced
        self._drops_seen = 0    # input ring overflows as of the worker's last read
        self._steps = 0
        self._thread: threading.Thread | None = None
        self._running = False
        self.error: BaseException | None = None  # what stopped the worker, if anything
        self._ready = False

    # ------------------------------------------------------------------ latency and stats
    def latency(self, host_input_samples: float = 0.0, host_output_samples: float = 0.0) -> LatencyBreakdown:
        """The latency split into its parts; pass the device's own latencies (PortAudio's report)."""
        to_host = self.host_rate_hz / self.model_rate_hz
        return LatencyBreakdown(
            host_rate_hz=self.host_rate_hz, host_input_samples=host_input_samples,
            host_output_samples=host_output_samples, ring_prefill_samples=self.prefill_samples,
            resampler_in_samples=self._resample_in.delay_samples * to_host,
            model_samples=self.separator.latency_samples * to_host,
            resampler_out_samples=self._resample_out.delay_samples)

    def stats(self) -> EngineStats:
        recent = list(self._timings)[-64:]
        audio_ms = sum(t.host_samples for t in recent) * 1000.0 / self.host_rate_hz
        compute_ms = sum(t.total_ms for t in recent)
        return EngineStats(
            samples_in=self.in_ring.total_written + self.in_ring.overflows,
            samples_out=self.out_ring.total_read + self.out_ring.underflows,
            underrun_samples=self.out_ring.underflows, dropped_input_samples=self.in_ring.overflows,
            skipped_output_samples=self._skipped, worker_steps=self._steps,
            load=compute_ms / audio_ms if audio_ms else 0.0)

    def timings(self) -> list[BlockTiming]:
        """Recent per-step compute timings, oldest first (a copy: profilers read, never write)."""
        return list(self._timings)

    # ------------------------------------------------------------------ lifecycle
    def prepare(self) -> None:
        """Compile every numba kernel, warm the model up, prefill the output ring. Call before a stream starts.

        Also sets the calling thread's torch intra-op threads to ``torch_threads`` (the file
        driver runs the worker's step in the calling thread).
        """
        torch.set_num_threads(self.torch_threads)
        warmup_ring()
        warmup_resampler()
        self.separator.reset()
        self.separator.process(np.zeros((self.channels, 4 * self.separator.frame_size), np.float32))
        self.separator.reset()
        self.mixer.settle()
        if not self._ready:
            self.out_ring.write(np.zeros((self.output_channels, self.prefill_samples), np.float32))
            self._ready = True

    def start(self) -> None:
        """``prepare()`` and start the worker thread."""
        self.prepare()
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

        Copies only; never waits, allocates arrays, locks or touches the model.
        """
        self.in_ring.write_frames(indata)
        self.out_ring.read_frames_into(outdata)
        self._wake()

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
        """Process all input waiting in the input ring (the worker's body); returns host samples taken."""
        n = self.in_ring.available
        if n == 0:
            return 0
        t0 = time.perf_counter()
        x = self._work[:, :n]
        self.in_ring.read_into(x)
        # input dropped while the ring was full lies after everything in the ring at that time:
        # drops seen up to the previous read precede this block, later ones follow it
        drops_before, self._drops_seen = self._drops_seen, self.in_ring.overflows
        down = self._resample_in.process(x)
        t1 = time.perf_counter()
        stems = self.separator.process(down)
        t2 = time.perf_counter()
        dry = np.concatenate([self._dry_history, down], axis=1)
        self._dry_history = dry[:, dry.shape[1] - self._dry_history.shape[1]:]
        mixed = self.mixer.mix(stems, dry[:, :down.shape[1]])
        t3 = time.perf_counter()
        y = self._resample_out.process(mixed)
        t4 = time.perf_counter()
        self._write_on_timeline(y, drops_before)
        self._steps += 1
        t5 = time.perf_counter()
        ms = 1000.0
        self._timings.append(BlockTiming(n, down.shape[1], (t1 - t0) * ms, (t2 - t1) * ms, (t3 - t2) * ms,
                                         (t4 - t3) * ms, (t5 - t0) * ms))
        return n

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
