"""Separation metrics: SI-SDR and the paper's windowed SI-SDR-improvement protocol."""
from __future__ import annotations

import math

import numpy as np

PROTOCOL_RATE_HZ = 22050  # the paper's scoring rate


def to_protocol_rate(x: np.ndarray, rate_hz: int) -> np.ndarray:
    """``[..., T]`` at ``rate_hz`` -> at :data:`PROTOCOL_RATE_HZ` (band-limited, zero-phase)."""
    if rate_hz == PROTOCOL_RATE_HZ:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate_hz, PROTOCOL_RATE_HZ)
    return resample_poly(x, PROTOCOL_RATE_HZ // g, rate_hz // g, axis=-1).astype(np.float32)


def si_sdr_db(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Scale-invariant SDR in dB over the last axis (``[..., T] -> [...]``); signals are zero-meaned."""
    est = estimate - estimate.mean(-1, keepdims=True)
    ref = reference - reference.mean(-1, keepdims=True)
    scale = (est * ref).sum(-1, keepdims=True) / ((ref * ref).sum(-1, keepdims=True) + eps)
    target = scale * ref
    noise = est - target
    return 10.0 * np.log10(((target * target).sum(-1) + eps) / ((noise * noise).sum(-1) + eps))


def windowed_si_sdri(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray,
                     sample_rate_hz: int, window_s: float = 4.0, hop_s: float = 2.0,
                     min_active: int = 2, silence_db: float = -60.0) -> np.ndarray:
    """The paper's protocol on one mono track: per-window SI-SDR improvements ``[W, S]``.

    ``estimates``/``references`` ``[S, T]``, ``mixture [T]``. SI-SDR improvement (estimate vs
    the mixture used as the estimate) per stem on ``window_s`` windows with a ``hop_s`` hop.
    A stem is active in a window when its mean power is above ``silence_db`` (dB re full
    scale); windows with fewer than ``min_active`` active stems are skipped, and inactive stems
    of kept windows are NaN (their SI-SDR is undefined). A track shorter than one window is
    scored as one window. Average with ``np.nanmean`` over windows (of all tracks), then stems.
    """
    n = mixture.shape[-1]
    win = min(int(round(window_s * sample_rate_hz)), n)
    hop = int(round(hop_s * sample_rate_hz))
    rows = []
    for start in range(0, n - win + 1, hop):
        ref = references[:, start:start + win]
        active = 10 * np.log10((ref ** 2).mean(-1) + 1e-20) > silence_db
        if active.sum() < min_active:
            continue
        est = estimates[:, start:start + win]
        mix = np.broadcast_to(mixture[start:start + win], ref.shape)
        rows.append(np.where(active, si_sdr_db(est, ref) - si_sdr_db(mix, ref), np.nan))
    return np.array(rows, dtype=np.float64).reshape(-1, references.shape[0])
