"""Reading an audio file at a given rate and channel count (soundfile decode, soxr resample)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """``[C, T] -> [channels, T]``: average to mono, repeat mono, or keep; other changes are errors."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise ValueError(f"cannot turn {have} channels into {channels}: only mono <-> any is defined")


def read_audio(path: str | Path, sample_rate_hz: int, channels: int) -> np.ndarray:
    """Decode ``path`` (WAV, FLAC, OGG, ... anything libsndfile reads) -> ``[channels, T]`` float32
    at ``sample_rate_hz`` (resampled with soxr's high-quality filter when the file's rate differs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)  # [T, C]
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"cannot decode {path}: {exc}") from exc
    if rate != sample_rate_hz and data.shape[0]:
        data = soxr.resample(data, rate, sample_rate_hz, quality="HQ").astype(np.float32, copy=False)
    return to_channels(np.ascontiguousarray(data.T), channels)
