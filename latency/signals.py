"""Probe signals for the round trip (impulses, a sweep) and finding them again by cross-correlation."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

IMPULSE_AMPLITUDE = 0.5
SWEEP_AMPLITUDE = 0.3


class ProbeSignal(NamedTuple):
    """A named mono signal ``samples [T]`` placed at ``offset`` in the played sequence."""

    name: str
    samples: np.ndarray
    offset: int


class DelayEstimate(NamedTuple):
    """Where a signal was found: ``delay_samples`` (sub-sample, from the correlation's peak) and
    ``correlation`` (the peak over the norms of the signal and of everything recorded in the
    search window: 1 for an exact delayed copy, low when the output does not resemble the input)."""

    delay_samples: float
    correlation: float


def impulse() -> np.ndarray:
    """One sample of ``IMPULSE_AMPLITUDE``: ``[1]``."""
    return np.array([IMPULSE_AMPLITUDE], np.float32)


def sweep(rate_hz: int, seconds: float = 0.25, low_hz: float = 50.0, high_hz: float = 8000.0) -> np.ndarray:
    """An exponential sine sweep ``low_hz -> high_hz`` with 5 ms fades: ``[seconds * rate]``.

    8 kHz stays inside every resampler's pass band (the model runs at 22.05 kHz).
    """
    n = int(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    k = np.log(high_hz / low_hz)
    phase = 2 * np.pi * low_hz * seconds / k * (np.exp(t * k / seconds) - 1)
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * rate_hz))
    return (SWEEP_AMPLITUDE * np.sin(phase) * fade).astype(np.float32)


def probe_sequence(rate_hz: int, gap_s: float, impulses: int = 3) -> tuple[np.ndarray, list[ProbeSignal]]:
    """``impulses`` single impulses, then the sweep, each followed by ``gap_s`` of silence: ``([T], parts)``.

    Each part is found on its own, so one disturbed part (a lost audio cycle) does not move
    the others' estimates; the gap must exceed the delay being measured.
    """
    gap = int(gap_s * rate_hz)
    named = [(f"impulse {i + 1}", impulse()) for i in range(impulses)] + [("sweep", sweep(rate_hz))]
    parts, pieces, offset = [], [], 0
    for name, samples in named:
        parts.append(ProbeSignal(name, samples, offset))
        pieces += [samples, np.zeros(gap, np.float32)]
        offset += samples.shape[0] + gap
    return np.concatenate(pieces), parts


def find_delay(recorded: np.ndarray, signal: ProbeSignal, max_delay_samples: int) -> DelayEstimate:
    """Delay of ``signal`` in ``recorded [T]`` (both on the played sequence's timeline).

    Cross-correlates the recording with the signal over lags ``0 .. max_delay_samples``, takes
    the peak and refines it with a parabola through its neighbours.
    """
    ref = signal.samples.astype(np.float64)
    n = ref.shape[0]
    segment = recorded[signal.offset:signal.offset + n + max_delay_samples + 1].astype(np.float64)
    if segment.shape[0] < n + max_delay_samples + 1:
        raise ValueError(f"the recording ({recorded.shape[0]} samples) ends before {signal.name!r} "
                         f"plus {max_delay_samples} samples of delay")
    size = 1 << int(np.ceil(np.log2(segment.shape[0] + n)))
    corr = np.fft.irfft(np.fft.rfft(segment, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[:max_delay_samples + 1]
    lag = int(np.argmax(np.abs(corr)))
    frac = 0.0
    if 0 < lag < max_delay_samples:
        a, b, c = np.abs(corr[lag - 1:lag + 2])
        denom = a - 2 * b + c
        frac = 0.5 * (a - c) / denom if denom else 0.0
    norm = np.linalg.norm(ref) * np.linalg.norm(segment)  # all the window's output, not just the peak's
    return DelayEstimate(float(lag + frac), float(abs(corr[lag]) / norm) if norm else 0.0)
