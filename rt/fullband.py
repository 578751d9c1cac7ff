"""``FullBandSplitter``: stems that sum to the host-rate input over the whole band.

A model that runs at a lower rate than the host (22.05 kHz under a 44.1 or 48 kHz host) never
sees the band above its resamplers' pass band (about 9.9 kHz for 22.05 kHz): cymbals, breath and
sibilance would be missing from every stem. This step puts that band back, sample by sample,
after the output resampler:

- ``lowband [C, n]``: the input as the model saw it, carried through the same resamplers (down,
  the model's delay, up), so it lags the input by exactly the pipeline's ``delay_samples``;
- ``rest = input[t - delay] - lowband``: what the model's band lacks (plus, for a model whose
  stems do not cover the whole mixture, nothing else: the stems are not touched below it);
- each stem gets a share of ``rest`` in proportion to its own energy near the top of the model's
  band (a second-order high-pass at ``guide_hz``, power smoothed over ``smooth_ms``): the stem
  with hi-hats up to 9.9 kHz gets the hi-hats' continuation. With no energy there at all, the
  shares are equal.

For a model with mixture consistency (its stems sum to its input), the stems out then sum to
the delayed input up to float rounding, over the whole band. Everything runs in numba over
preallocated state: no allocation per block; any block size gives the same output.
"""
from __future__ import annotations

import math

import numba
import numpy as np

GUIDE_FRACTION = 0.6   # the guide's high-pass corner, as a fraction of the lower of the model's and the host's Nyquist
SMOOTH_MS = 20.0       # time constant of the guide's power envelope
FLOOR = 1e-12          # guide power below which a stem counts as silent up there


def highpass_biquad(cutoff_hz: float, sample_rate_hz: int) -> np.ndarray:
    """Second-order Butterworth high-pass (RBJ cookbook), ``[b0, b1, b2, a1, a2]`` float64, ``a0 = 1``."""
    if not 0 < cutoff_hz < sample_rate_hz / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and Nyquist ({sample_rate_hz / 2} Hz)")
    w0 = 2 * math.pi * cutoff_hz / sample_rate_hz
    alpha = math.sin(w0) / (2 * math.sqrt(0.5))
    cos_w0 = math.cos(w0)
    a0 = 1 + alpha
    b = np.array([(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]) / a0
    a = np.array([-2 * cos_w0, 1 - alpha]) / a0
    return np.concatenate([b, a])


@numba.njit(cache=True)
def _fullband_kernel(mixture, lowband, stems, n, coeffs, smooth, history, filt, power, out, delayed_out):
    """``out[s, c, k] = stems[s, c, k] + share[s, c, k] * (mixture[c, k - D] - lowband[c, k])``;
    ``delayed_out[c, k] = mixture[c, k - D]`` (may be ``lowband`` itself: read before written).

    State: ``history [C, D]`` (the last ``D`` input samples), ``filt [S, C, 4]`` (the guide
    filter's x1, x2, y1, y2), ``power [S, C]`` (the guide's smoothed power).
    """
    n_stems, channels = stems.shape[0], stems.shape[1]
    delay = history.shape[1]
    b0, b1, b2, a1, a2 = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    for c in range(channels):
        for k in range(n):
            if delay == 0:
                delayed = mixture[c, k]
            elif k < delay:
                delayed = history[c, k]
            else:
                delayed = mixture[c, k - delay]
            rest = delayed - lowband[c, k]
            delayed_out[c, k] = delayed
            total = 0.0
            for s in range(n_stems):
                x0 = stems[s, c, k]
                f = filt[s, c]
                y0 = b0 * x0 + b1 * f[0] + b2 * f[1] - a1 * f[2] - a2 * f[3]
                f[1] = f[0]
                f[0] = x0
                f[3] = f[2]
                f[2] = y0
                power[s, c] += smooth * (y0 * y0 - power[s, c])
                total += power[s, c]
            if total > FLOOR * n_stems:
                for s in range(n_stems):
                    out[s, c, k] = stems[s, c, k] + (power[s, c] / total) * rest
            else:
                for s in range(n_stems):
                    out[s, c, k] = stems[s, c, k] + rest / n_stems
        # keep the last ``delay`` input samples (the block may be shorter than the delay)
        if n >= delay:
            for j in range(delay):
                history[c, j] = mixture[c, n - delay + j]
        else:
            for j in range(delay - n):
                history[c, j] = history[c, j + n]
            for j in range(n):
                history[c, delay - n + j] = mixture[c, j]


class FullBandSplitter:
    """Adds the band the model lacks to its host-rate stems, shared out by each stem's top-band energy.

    Args:
        n_stems: ``S``.
        channels: ``C``.
        delay_samples: how far ``stems`` and ``lowband`` lag the input (whole host samples).
        sample_rate_hz: the host rate.
        model_rate_hz: the model's rate. The lower of its and the host's Nyquist sets the guide
            filter's corner: the resamplers between the two rates pass only below both.
    """

    def __init__(self, n_stems: int, channels: int, delay_samples: int, sample_rate_hz: int,
                 model_rate_hz: int) -> None:
        if delay_samples < 0 or int(delay_samples) != delay_samples:
            raise ValueError(f"delay_samples must be a whole number >= 0, got {delay_samples!r}")
        self.n_stems, self.channels = int(n_stems), int(channels)
        self.delay_samples = int(delay_samples)
        self.sample_rate_hz = int(sample_rate_hz)
        self.guide_hz = GUIDE_FRACTION * min(model_rate_hz, self.sample_rate_hz) / 2
        self._coeffs = highpass_biquad(self.guide_hz, self.sample_rate_hz)
        self._smooth = 1.0 - math.exp(-1000.0 / (SMOOTH_MS * self.sample_rate_hz))
        self._history = np.zeros((self.channels, self.delay_samples), np.float64)
        self._filt = np.zeros((self.n_stems, self.channels, 4), np.float64)
        self._power = np.zeros((self.n_stems, self.channels), np.float64)

    def reset(self) -> None:
        """Forget the stream (the delay line and the guide's state start from silence)."""
        self._history.fill(0.0)
        self._filt.fill(0.0)
        self._power.fill(0.0)

    def process_into(self, mixture: np.ndarray, lowband: np.ndarray, stems: np.ndarray, out: np.ndarray,
                     delayed_out: np.ndarray) -> None:
        """``mixture [C, n]`` (the host input, not delayed), ``lowband [C, n]`` and ``stems [S, C, n]``
        (both lagging it by ``delay_samples``) -> ``out [S, C, n]`` (float32; may be ``stems``
        itself) and ``delayed_out [C, n]``, the input delayed like the stems (the full-band dry
        signal; may be ``lowband`` itself). Allocates nothing."""
        n = stems.shape[2]
        _fullband_kernel(mixture, lowband, stems, n, self._coeffs, self._smooth, self._history, self._filt,
                         self._power, out, delayed_out)

    def process(self, mixture: np.ndarray, lowband: np.ndarray, stems: np.ndarray) -> np.ndarray:
        """Like :meth:`process_into`, returning a new ``[S, C, n]`` array (for offline callers)."""
        out = np.empty_like(stems)
        self.process_into(mixture, lowband, stems, out, np.empty_like(lowband))
        return out


def warmup() -> None:
    """Compile the kernel before a stream starts."""
    FullBandSplitter(2, 1, 3, 44100, 22050).process(
        np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32), np.zeros((2, 1, 4), np.float32))
