"""``SeparationPipeline``: host-rate blocks in, mixed stems out, over preallocated arrays only.

One block of ``n`` host samples ``[C, n]`` goes through:

1. the input resampler (host -> model rate, :meth:`StreamingResampler.process_into`) into a
   small model-rate FIFO, which holds what is left over when a block is not a multiple of the
   model's frame;
2. the model: every whole frame in the FIFO runs the numba frame step
   (:class:`model.numba_step.NumbaFrameStep`, preallocated state) into a stems queue that
   starts with ``frame_size - 1`` zeros, the frame's own wait, which is part of the model's
   reported latency (``frame - 1 + overlap``). Beside the stems a dry channel (the model-rate
   input delayed by the model's latency) rides the same queue;
3. the output resampler (model -> host rate, every stem and the dry channel) into a host-rate
   FIFO, from which exactly ``n`` samples are taken;
4. the full-band step (:class:`rt.fullband.FullBandSplitter`, when the host rate differs from
   the model's: the band the model lacks, input minus the dry channel, is shared out among the
   stems, so they sum to the delayed input over the whole band) and the mixer
   (:meth:`StemMixer.mix_into`: gains, mute, solo, dry/wet with ramps).

Why exactly ``n`` samples are always there: after ``N`` host inputs the input resampler has
emitted ``M = ceil(N * model / host)`` model samples, the queue then holds at least ``M``
stems (the ``frame - 1`` zeros cover the unfinished frame), and the output resampler emits
``ceil(M * host / model) >= N``. So the FIFOs add no delay: the output is the input delayed by
exactly ``latency_breakdown(...).engine_samples`` (resamplers + model), whatever the block
sizes. ``shortfall_samples`` counts any violation (it stays 0; the tests check it).

With a separator that has no numba frame step (backend ``torch``, e.g. CUDA), step 2 calls
``StreamingSeparator.process`` instead, which allocates: that pipeline is for the engine's
worker thread only (``allocation_free`` is False).
"""
from __future__ import annotations

import numba
import numpy as np

from model import StreamingSeparator

from .fullband import FullBandSplitter
from .delays import latency_breakdown, resamplers
from .mixer import StemMixer


@numba.njit(cache=True)
def _frames_to_channels(indata, offset, n, x):
    """``x[c, k] = indata[offset + k, c]`` for ``k < n`` (sounddevice's frame-major block in)."""
    for k in range(n):
        for c in range(x.shape[0]):
            x[c, k] = indata[offset + k, c]


@numba.njit(cache=True)
def _channels_to_frames(y, n, outdata, offset):
    """``outdata[offset + k, c] = y[c, k]`` for ``k < n`` (the mixed block out, frame-major)."""
    for k in range(n):
        for c in range(y.shape[0]):
            outdata[offset + k, c] = y[c, k]


@numba.njit(cache=True)
def _copy_columns(src, src_start, dst, dst_start, n):
    """``dst[..., dst_start:dst_start+n] = src[..., src_start:src_start+n]`` over the first axis (2-D)."""
    for r in range(src.shape[0]):
        for k in range(n):
            dst[r, dst_start + k] = src[r, src_start + k]


@numba.njit(cache=True)
def _shift_left(buf, by, length):
    """Drop the first ``by`` of ``length`` valid columns of ``buf [R, cap]`` (the rest moves to the front)."""
    for r in range(buf.shape[0]):
        for k in range(length - by):
            buf[r, k] = buf[r, by + k]


@numba.njit(cache=True)
def _append_frame(stems_q, q_len, frame):
    """``stems_q[s, c, q_len:q_len+F] = frame[s, c, :]`` for the ``S`` stems of ``frame [S, C, F]``."""
    for s in range(frame.shape[0]):
        for c in range(frame.shape[1]):
            for k in range(frame.shape[2]):
                stems_q[s, c, q_len + k] = frame[s, c, k]


@numba.njit(cache=True)
def _zero_nonfinite(x, n):
    """Replace NaN/inf in ``x[:, :n]`` by zeros (they would poison the filters and the model's state);
    returns how many."""
    count = 0
    for r in range(x.shape[0]):
        for k in range(n):
            if not np.isfinite(x[r, k]):
                x[r, k] = 0.0
                count += 1
    return count


@numba.njit(cache=True)
def _zero_columns(buf, start, stop):
    for r in range(buf.shape[0]):
        for k in range(start, stop):
            buf[r, k] = 0.0


class SeparationPipeline:
    """Separates and mixes a host-rate stream block by block, allocation-free (numba backend).

    Args:
        separator: the model runtime; its numba frame step is used when its backend is numba.
        host_rate_hz: the stream's rate.
        channels: input channels ``C`` (1 or 2).
        max_block_samples: the largest block one :meth:`process` call takes.
        mixer: the stem mixer at ``host_rate_hz`` (its controls may change while running).
    """

    def __init__(self, separator: StreamingSeparator, host_rate_hz: int, channels: int,
                 max_block_samples: int, mixer: StemMixer) -> None:
        self.separator = separator
        self.mixer = mixer
        self.host_rate_hz = int(host_rate_hz)
        self.channels = int(channels)
        self.max_block_samples = int(max_block_samples)
        self.n_stems = len(separator.stems)
        frame = self.frame_size = separator.frame_size
        self.allocation_free = separator.backend == "numba"
        self._step = None
        if self.allocation_free:
            from model.numba_step import NumbaFrameStep

            self._step = NumbaFrameStep(separator.model, separator.n_q, self.channels)
        s1, c = self.n_stems + 1, self.channels
        self._rs_in, self._rs_out = resamplers(separator, self.host_rate_hz, c, s1 * c)
        self._rs_in.reserve(self.max_block_samples)
        max_model = self._rs_in.max_outputs(self.max_block_samples)
        self._rs_out.reserve(max_model)
        self._x = np.zeros((c, self.max_block_samples), np.float32)              # host input block
        self._model_in = np.zeros((c, frame + max_model), np.float32)            # model-rate FIFO
        self._frames = [self._model_in[:, i * frame:(i + 1) * frame]             # fixed views: no
                        for i in range((frame + max_model) // frame)]            # allocation per frame
        self._frame_out = np.zeros((self.n_stems, c, frame), np.float32)
        self._stems_q = np.zeros((s1, c, 2 * frame + max_model), np.float32)    # stems + dry, model rate
        self._stems_q2d = self._stems_q.reshape(s1 * c, -1)
        self._dry_slot = self._stems_q[self.n_stems]
        self._dry_q = np.zeros((c, separator.latency_samples + max_model), np.float32)
        host_room = self._rs_out.max_outputs(max_model) + 2 * -(-self.host_rate_hz // separator.sample_rate_hz) + 8
        self._host_q = np.zeros((s1 * c, host_room), np.float32)                 # stems + dry, host rate
        host_q3 = self._host_q.reshape(s1, c, -1)
        self._host_stems, self._host_dry = host_q3[:self.n_stems], host_q3[self.n_stems]
        self._y = np.zeros((mixer.output_channels, self.max_block_samples), np.float32)
        self._fullband = None
        if self.host_rate_hz != separator.sample_rate_hz:  # the band the resamplers lack goes back in
            delay = latency_breakdown(separator, self.host_rate_hz).engine_samples  # whole (padded resampler)
            self._fullband = FullBandSplitter(self.n_stems, c, round(delay), self.host_rate_hz,
                                              separator.sample_rate_hz)
            self._fullband_out = np.zeros((self.n_stems, c, self.max_block_samples), np.float32)
        self.reset()

    def run_in_callback(self, release_gil: bool = False) -> None:
        """The pipeline will run inside the audio callback: by default its frame step keeps the
        GIL (the callback holds it anyway; releasing and retaking it per kernel waits on any busy
        Python thread; ``release_gil=True`` is for comparing the two). Compiles the kernels now,
        before a stream starts, and resets the pipeline."""
        if self._step is not None:
            self._step.use_kernels(release_gil=release_gil)
            self._step.step(np.zeros_like(self._frames[0]), np.zeros_like(self._frame_out))
            self.reset()

    @property
    def fullband(self) -> bool:
        """Whether the stems are made to sum to the delayed input over the whole band (rt/fullband.py)."""
        return self._fullband is not None

    def reset(self) -> None:
        """Forget the stream: zero every state and FIFO (the queues start with their fixed waits)."""
        if self._step is not None:
            self._step.reset()
        else:
            self.separator.reset()
        self._rs_in.reset()
        self._rs_out.reset()
        for buf in (self._model_in, self._stems_q, self._dry_q, self._host_q):
            buf.fill(0.0)
        self._pending = 0                                    # model-rate samples waiting for a frame
        self._q_len = self.frame_size - 1 if self._step is not None else 0  # the frame's wait
        self._dry_len = self.separator.latency_samples       # the dry delay line
        self._h_len = 0
        self.shortfall_samples = 0
        self.nonfinite_samples = 0  # NaN/inf input samples zeroed
        if self._fullband is not None:
            self._fullband.reset()

    # ------------------------------------------------------------------ processing
    def process_frames(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """``indata [n, C]`` -> ``outdata [n, C_out]`` (float32, frame-major: sounddevice's blocks), any ``n``.

        Blocks longer than ``max_block_samples`` are processed in pieces; nothing is allocated
        (numba backend).
        """
        n_total = indata.shape[0]
        offset = 0
        while offset < n_total:
            n = min(self.max_block_samples, n_total - offset)
            _frames_to_channels(indata, offset, n, self._x)
            self._run(n)
            _channels_to_frames(self._y, n, outdata, offset)
            offset += n

    def process_into(self, x: np.ndarray, n: int, y: np.ndarray) -> None:
        """``x[:, :n]`` (``[C, >=n]``) -> ``y[:, :n]`` (``[C_out, >=n]``), ``n <= max_block_samples``."""
        self._piece(x, 0, y, 0, n)

    def process(self, x: np.ndarray) -> np.ndarray:
        """``x [C, n]`` (float32, any ``n``) -> a new ``[C_out, n]``: for offline callers (the
        plugin host), which own the result. Runs :meth:`process_into`'s steps on pieces of at most
        ``max_block_samples``; allocates only the returned array (and the input's float32 copy
        if it is not one)."""
        x = np.ascontiguousarray(x, np.float32)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"expected a [channels={self.channels}, samples] block, got shape {x.shape}")
        n_total = x.shape[1]
        out = np.empty((self.mixer.output_channels, n_total), np.float32)
        offset = 0
        while offset < n_total:
            n = min(self.max_block_samples, n_total - offset)
            self._piece(x, offset, out, offset, n)
            offset += n
        return out

    def _piece(self, x: np.ndarray, x_start: int, y: np.ndarray, y_start: int, n: int) -> None:
        """``x[:, x_start:x_start + n]`` -> ``y[:, y_start:y_start + n]`` through the buffers (``n <= max_block_samples``)."""
        _copy_columns(x, x_start, self._x, 0, n)
        self._run(n)
        _copy_columns(self._y, 0, y, y_start, n)

    def _run(self, n: int) -> None:
        """The block in ``self._x[:, :n]`` -> the mixed block in ``self._y[:, :n]``."""
        frame = self.frame_size
        p = self._pending
        bad = _zero_nonfinite(self._x, n)
        if bad:
            self.nonfinite_samples += bad
        m = self._rs_in.process_into(self._x, n, self._model_in, p)
        _copy_columns(self._model_in, p, self._dry_q, self._dry_len, m)
        self._dry_len += m
        if self._step is not None:
            frames = (p + m) // frame
            for i in range(frames):
                self._step.step(self._frames[i], self._frame_out)
                _append_frame(self._stems_q, self._q_len, self._frame_out)
                self._q_len += frame
            _shift_left(self._model_in, frames * frame, p + m)
            self._pending = p + m - frames * frame
        elif m:  # torch backend (worker thread only): the runtime keeps its own frame FIFO
            stems = self.separator.process(self._model_in[:, :m])
            self._stems_q[:self.n_stems, :, self._q_len:self._q_len + m] = stems
            self._q_len += m
        # the dry channel joins the stems' front, then both leave the queue together
        _copy_columns(self._dry_q, 0, self._dry_slot, 0, m)
        _shift_left(self._dry_q, m, self._dry_len)
        self._dry_len -= m
        h = self._h_len
        r = self._rs_out.process_into(self._stems_q2d, m, self._host_q, h)
        _shift_left(self._stems_q2d, m, self._q_len)
        self._q_len -= m
        h += r
        if h < n:  # cannot happen (see the module docstring); counted, played as silence
            _zero_columns(self._host_q, h, n)
            self.shortfall_samples += n - h
            h = n
        stems = self._host_stems
        if self._fullband is not None:
            # the dry channel becomes the delayed input itself (full band) in place
            self._fullband.process_into(self._x[:, :n], self._host_dry[:, :n], self._host_stems[:, :, :n],
                                        self._fullband_out[:, :, :n], self._host_dry[:, :n])
            stems = self._fullband_out
        self.mixer.mix_into(stems, self._host_dry, n, self._y)
        _shift_left(self._host_q, n, h)
        self._h_len = h - n


def warmup() -> None:
    """Compile this module's kernels (and the mixer's and resampler's) before a stream starts."""
    from .fullband import warmup as warmup_fullband
    from .mixer import warmup as warmup_mixer
    from .resample import warmup as warmup_resampler

    warmup_mixer()
    warmup_resampler()
    warmup_fullband()
    frames, block = np.zeros((4, 2), np.float32), np.zeros((2, 4), np.float32)
    _frames_to_channels(frames, 0, 4, block)
    _channels_to_frames(block, 4, frames, 0)
    _copy_columns(block, 0, block, 0, 2)
    _shift_left(block, 1, 4)
    _append_frame(np.zeros((2, 2, 8), np.float32), 0, np.zeros((2, 2, 4), np.float32))
    _zero_columns(block, 0, 4)
    _zero_nonfinite(block, 4)
