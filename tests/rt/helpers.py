"""Shared helpers for the rt tests: small separators and the offline reference of an engine."""
from __future__ import annotations

import copy

import numpy as np
import torch

import model
from rt.resample import StreamingResampler
from tests.conftest import small_config


def small_separator(seed: int = 0) -> model.StreamingSeparator:
    """A tiny random-weight causal separator (frame 32 at 22.05 kHz)."""
    torch.manual_seed(seed)
    return model.StreamingSeparator(model.RQVAESeparator(small_config()).eval())


def offline_reference(separator: model.StreamingSeparator, audio: np.ndarray, host_rate_hz: int,
                      gains: np.ndarray, prefill_samples: int, length: int) -> np.ndarray:
    """What the engine must play for ``audio [C, T]`` with constant stem ``gains [S]`` and wet = 1.

    The offline separation (``separate`` at the model's rate, of the input resampled by the
    same resampler) is delayed by the model's latency, mixed, resampled back and preceded by
    the prefill: ``[C, length]``.
    """
    sep = model.StreamingSeparator(copy.deepcopy(separator.model))
    channels = audio.shape[0]
    down = StreamingResampler(host_rate_hz, sep.sample_rate_hz, channels)
    at_model_rate = np.concatenate([down.process(audio), down.flush()], axis=1)
    stems = sep.separate(at_model_rate)  # [S, C, m] aligned with its input
    delayed = np.concatenate([np.zeros(stems.shape[:2] + (sep.latency_samples,), np.float32), stems], axis=2)
    mixed = np.einsum("s,scn->cn", gains.astype(np.float32), delayed)
    up = StreamingResampler(sep.sample_rate_hz, host_rate_hz, channels)
    y = np.concatenate([np.zeros((channels, prefill_samples), np.float32), up.process(mixed)], axis=1)
    return y[:, :length]


def fitted_delay_samples(y: np.ndarray, start: int, freq_hz: float, rate_hz: int) -> float:
    """Delay ``d`` of ``y[k] = A sin(w (k - d))`` by least squares (``y`` starts at index ``start``)."""
    w = 2 * np.pi * freq_hz / rate_hz
    k = np.arange(start, start + y.shape[0])
    a, b = np.linalg.lstsq(np.stack([np.sin(w * k), np.cos(w * k)], 1), y, rcond=None)[0]
    return float(-np.arctan2(b, a) / w)
