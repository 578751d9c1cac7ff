"""``StreamingResampler``: the project's one streaming sample-rate converter.

A rational polyphase resampler (upsample by ``L``, linear-phase Kaiser-windowed sinc low-pass,
downsample by ``M``) run causally: output sample ``k`` is emitted as soon as the input it
needs has arrived, so every ``process`` call returns ``ceil(n_in * L / M)`` outputs in total
so far (n_in = input samples so far) and the output is the ideal resampled signal delayed by
exactly ``delay_samples`` output samples (the symmetric filter's group delay, a float).
The filter kernel is a numba ``@njit(cache=True)`` function; :func:`warmup` compiles it.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

ZERO_CROSSINGS = 16        # filter half-length, in periods of the lower of the two rates
CUTOFF_FRACTION = 0.90     # pass band edge as a fraction of the lower rate's Nyquist
KAISER_BETA = 8.6          # about 80 dB stop-band attenuation


def filter_delay(in_rate_hz: int, out_rate_hz: int, delay_padding: int = 0) -> Fraction:
    """Exact delay, in output samples, of the resampler from ``in_rate_hz`` to ``out_rate_hz``:
    the filter's group delay (``ZERO_CROSSINGS * max(up, down)`` upsampled samples, see
    :func:`design_filter`) plus ``delay_padding`` upsampled samples, ``1 / down`` output samples
    each. Zero for equal rates."""
    if in_rate_hz == out_rate_hz:
        return Fraction(0)
    g = math.gcd(in_rate_hz, out_rate_hz)
    up, down = out_rate_hz // g, in_rate_hz // g
    return Fraction(ZERO_CROSSINGS * max(up, down) + delay_padding, down)


def design_filter(up: int, down: int) -> np.ndarray:
    """Linear-phase low-pass prototype at the upsampled rate, gain ``up``; odd length ``N``.

    Its group delay is exactly ``(N - 1) / 2`` upsampled samples (``ZERO_CROSSINGS * max(up, down)``).
    """
    span = max(up, down)
    half = ZERO_CROSSINGS * span
    n = np.arange(-half, half + 1, dtype=np.float64)
    cutoff = CUTOFF_FRACTION * 0.5 / span  # cycles per upsampled sample
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(2 * half + 1, KAISER_BETA)
    return (taps * up).astype(np.float64)


def polyphase_table(taps: np.ndarray, up: int) -> np.ndarray:
    """``table[p, j] = taps[p + j * up]`` (zero past the end): one row per output phase ``[up, K]``."""
    k = -(-taps.shape[0] // up)
    padded = np.zeros(k * up, np.float64)
    padded[: taps.shape[0]] = taps
    return np.ascontiguousarray(padded.reshape(k, up).T.astype(np.float32))


@numba.njit(cache=True)
def _polyphase_into(work: np.ndarray, work_start: np.int64, table: np.ndarray, up: np.int64, down: np.int64,
                    k_first: np.int64, n_out: np.int64, out: np.ndarray, out_offset: np.int64) -> None:
    """``out[c, out_offset + m] = sum_j table[p, j] * x[i - j]`` for output ``k = k_first + m``, ``m < n_out``.

    ``work [C, W]`` holds input samples with global indices ``work_start .. work_start + W - 1``;
    ``i = (k * down) // up`` and ``p = (k * down) % up``.
    """
    n_taps = table.shape[1]
    for m in range(n_out):
        t = (k_first + m) * down
        i = t // up
        p = t - i * up
        base = i - work_start
        for c in range(out.shape[0]):
            acc = np.float32(0.0)
            for j in range(n_taps):
                acc += table[p, j] * work[c, base - j]
            out[c, out_offset + m] = acc


@numba.njit(cache=True, nogil=True)
def _resample_kernel(work: np.ndarray, work_start: np.int64, table: np.ndarray, up: np.int64,
                     down: np.int64, k_first: np.int64, out: np.ndarray) -> None:
    """All of ``out [C, n_out]`` from outputs ``k_first ..`` (see :func:`_polyphase_into`)."""
    _polyphase_into(work, work_start, table, up, down, k_first, out.shape[1], out, 0)


@numba.njit(cache=True)
def _resample_into_kernel(history: np.ndarray, work: np.ndarray, x: np.ndarray, n_in: np.int64,
                          table: np.ndarray, up: np.int64, down: np.int64, in_count: np.int64,
                          out_count: np.int64, out: np.ndarray, out_offset: np.int64) -> np.int64:
    """Allocation-free streaming step: ``x[:, :n_in]`` in, outputs into ``out[:, out_offset:]``.

    ``history [C, K]`` holds the ``K`` inputs before ``x`` (updated in place), ``work
    [C, K + n_max]`` is scratch. Returns the outputs written, or -1 (nothing changed) when
    ``out`` lacks room. Keeps the GIL: an audio callback holds it anyway, and releasing and
    retaking it costs up to a switch interval when another Python thread is busy.
    """
    channels, n_taps = history.shape
    out_end = -((-(in_count + n_in) * up) // down)  # ceil: outputs whose newest input has arrived
    n_out = out_end - out_count
    if out_offset + n_out > out.shape[1]:
        return -1
    for c in range(channels):
        for k in range(n_taps):
            work[c, k] = history[c, k]
        for k in range(n_in):
            work[c, n_taps + k] = x[c, k]
    _polyphase_into(work, in_count - n_taps, table, up, down, out_count, n_out, out, out_offset)
    for c in range(channels):
        for k in range(n_taps):
            history[c, k] = work[c, n_in + k]
    return n_out


@numba.njit(cache=True)
def _copy_into_kernel(x: np.ndarray, n: np.int64, out: np.ndarray, offset: np.int64) -> np.int64:
    """Equal rates: copy ``x[:, :n]`` to ``out[:, offset:]``; -1 when ``out`` lacks room."""
    if offset + n > out.shape[1]:
        return -1
    for c in range(x.shape[0]):
        for k in range(n):
            out[c, offset + k] = x[c, k]
    return n


class StreamingResampler:
    """Converts a ``[C, n]`` float32 stream from ``in_rate_hz`` to ``out_rate_hz``, causally.

    ``process(x [C, n]) -> [C, m]`` for any ``n >= 0``: the concatenated outputs are the
    band-limited resampling of the input delayed by exactly ``delay_samples`` output samples
    (``0.0`` and an exact copy when the rates are equal). ``flush() -> [C, m]`` returns the
    rest of the delayed signal at the end of the stream (the filter's tail) and resets.
    ``reset()`` forgets all history. The filter is Kaiser-windowed sinc, 16 zero crossings of
    the lower rate each side, pass band to 90 % of the lower Nyquist, about 80 dB stop band.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int, channels: int, delay_padding: int = 0) -> None:
        for name, value in (("in_rate_hz", in_rate_hz), ("out_rate_hz", out_rate_hz), ("channels", channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if int(delay_padding) != delay_padding or delay_padding < 0:
            raise ValueError(f"delay_padding must be a whole number >= 0, got {delay_padding!r}")
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self.channels = int(channels)
        g = math.gcd(self.in_rate_hz, self.out_rate_hz)
        self.up = self.out_rate_hz // g
        self.down = self.in_rate_hz // g
        self.passthrough = self.up == self.down
        if self.passthrough:
            self.delay_samples = 0.0
            self._table = np.zeros((1, 1), np.float32)
        else:
            # delay_padding zeros before the filter delay it by that many upsampled-rate samples
            # (1 / down output samples each): a pipeline uses it to make its total delay whole
            taps = np.concatenate([np.zeros(int(delay_padding)), design_filter(self.up, self.down)])
            self.delay_samples = float(filter_delay(self.in_rate_hz, self.out_rate_hz, int(delay_padding)))
            self._table = polyphase_table(taps, self.up)
        self._n_taps = self._table.shape[1]
        self.reset()
        self.reserve(4096)

    def reset(self) -> None:
        """Forget all input: the next sample is input sample 0, preceded by silence."""
        self._history = np.zeros((self.channels, self._n_taps), np.float32)
        self._in_count = 0   # input samples received
        self._out_count = 0  # output samples emitted

    def _outputs_available(self, in_count: int) -> int:
        """Outputs ``k`` with ``k * down < in_count * up`` (their newest input has arrived)."""
        return -(-in_count * self.up // self.down)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed ``x [C, n]`` (float32); returns the output samples now complete, ``[C, m]``."""
        x = self._validate(x)
        if self.passthrough:
            self._in_count += x.shape[1]
            self._out_count += x.shape[1]
            return x.copy()
        return self._run(x, self._in_count + x.shape[1], self._outputs_available(self._in_count + x.shape[1]))


    def reserve(self, max_input_samples: int) -> None:
        """Preallocate :meth:`process_into`'s scratch for calls of up to ``max_input_samples`` inputs."""
        if max_input_samples < 1:
            raise ValueError(f"max_input_samples must be >= 1, got {max_input_samples}")
        self._max_into = int(max_input_samples)
        self._work_into = np.zeros((self.channels, self._n_taps + self._max_into), np.float32)

    def max_outputs(self, input_samples: int) -> int:
        """The most outputs one call with ``input_samples`` inputs can return (room to give ``process_into``)."""
        return -(-input_samples * self.up // self.down) + 1

    def process_into(self, x: np.ndarray, n: int, out: np.ndarray, offset: int = 0) -> int:
        """Feed ``x[:, :n]`` (float32 ``[C, >= n]``) and write the outputs now complete into
        ``out[:, offset:]`` (float32 ``[C, >= offset + max_outputs(n)]``); returns how many.

        The same stream as :meth:`process` (the two may be mixed), but nothing is allocated:
        for a real-time callback. Call :meth:`reserve` first; ``n`` may not exceed it.
        """
        if n > self._max_into:
            raise ValueError(f"process_into got {n} samples but reserve() made room for {self._max_into}; "
                             "call reserve() with the largest block first")
        if self.passthrough:
            written = _copy_into_kernel(x, n, out, offset)
        else:
            written = _resample_into_kernel(self._history, self._work_into, x, n, self._table, self.up,
                                            self.down, self._in_count, self._out_count, out, offset)
        if written < 0:
            raise ValueError(f"process_into: out has {out.shape[1] - offset} samples of room after offset "
                             f"{offset}, {self.max_outputs(n)} are needed")
        self._in_count += n
        self._out_count += written
        return written

    def flush(self) -> np.ndarray:
        """End of stream: the remaining ``[C, m]`` outputs of the delayed signal; then ``reset()``.

        After a flush the outputs total ``ceil(n_in * up / down + delay_samples)``.
        """
        if self.passthrough:
            self.reset()
            return np.zeros((self.channels, 0), np.float32)
        total = math.ceil(self._in_count * self.up / self.down + self.delay_samples)
        last_input = (max(total - 1, 0) * self.down) // self.up  # newest input the last output reads
        pad = max(last_input + 1 - self._in_count, 0)
        out = self._run(np.zeros((self.channels, pad), np.float32), self._in_count, total)
        self.reset()
        return out

    def _run(self, x: np.ndarray, in_count_after: int, out_end: int) -> np.ndarray:
        work = np.concatenate([self._history, x], axis=1)
        work_start = self._in_count - self._n_taps
        n_out = max(out_end - self._out_count, 0)
        out = np.empty((self.channels, n_out), np.float32)
        if n_out:
            _resample_kernel(work, np.int64(work_start), self._table, np.int64(self.up),
                             np.int64(self.down), np.int64(self._out_count), out)
        self._history = np.ascontiguousarray(work[:, work.shape[1] - self._n_taps:])
        self._in_count = in_count_after
        self._out_count += n_out
        return out

    def _validate(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"expected a [channels={self.channels}, samples] array, got shape {x.shape}")
        return np.ascontiguousarray(x, dtype=np.float32)


def warmup() -> None:
    """Compile the resampling kernel (from numba's cache when possible) before a stream starts."""
    StreamingResampler(48000, 22050, 1).process(np.zeros((1, 64), np.float32))
    for rates in ((48000, 22050), (22050, 22050)):  # process_into: resampling and equal-rate copy
        resampler = StreamingResampler(*rates, 1)
        resampler.process_into(np.zeros((1, 64), np.float32), 64, np.zeros((1, 128), np.float32), 0)
