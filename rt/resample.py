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

import numba
import numpy as np

ZERO_CROSSINGS = 16        # filter half-length, in periods of the lower of the two rates
CUTOFF_FRACTION = 0.90     # pass band edge as a fraction of the lower rate's Nyquist
KAISER_BETA = 8.6          # about 80 dB stop-band attenuation


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


@numba.njit(cache=True, nogil=True)
def _resample_kernel(work: np.ndarray, work_start: np.int64, table: np.ndarray, up: np.int64,
                     down: np.int64, k_first: np.int64, out: np.ndarray) -> None:
    """``out[c, m] = sum_j table[p, j] * x[i - j]`` for output ``k = k_first + m``.

    ``work [C, W]`` holds input samples with global indices ``work_start .. work_start + W - 1``;
    ``i = (k * down) // up`` and ``p = (k * down) % up``.
    """
    channels, n_out = out.shape
    n_taps = table.shape[1]
    for m in range(n_out):
        t = (k_first + m) * down
        i = t // up
        p = t - i * up
        base = i - work_start
        for c in range(channels):
            acc = np.float32(0.0)
            for j in range(n_taps):
                acc += table[p, j] * work[c, base - j]
            out[c, m] = acc


class StreamingResampler:
    """Converts a ``[C, n]`` float32 stream from ``in_rate_hz`` to ``out_rate_hz``, causally.

    ``process(x [C, n]) -> [C, m]`` for any ``n >= 0``: the concatenated outputs are the
    band-limited resampling of the input delayed by exactly ``delay_samples`` output samples
    (``0.0`` and an exact copy when the rates are equal). ``flush() -> [C, m]`` returns the
    rest of the delayed signal at the end of the stream (the filter's tail) and resets.
    ``reset()`` forgets all history. The filter is Kaiser-windowed sinc, 16 zero crossings of
    the lower rate each side, pass band to 90 % of the lower Nyquist, about 80 dB stop band.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int, channels: int) -> None:
        for name, value in (("in_rate_hz", in_rate_hz), ("out_rate_hz", out_rate_hz), ("channels", channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
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
            taps = design_filter(self.up, self.down)
            self.delay_samples = ((taps.shape[0] - 1) / 2) / self.down
            self._table = polyphase_table(taps, self.up)
        self._n_taps = self._table.shape[1]
        self.reset()

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
