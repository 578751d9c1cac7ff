"""Shared helpers for the rt tests: small separators and the offline reference of an engine."""
from __future__ import annotations


import numpy as np
import torch

import model
from rt.fullband import FullBandSplitter
from rt.delays import latency_breakdown, resamplers
from tests.helpers import small_config


def small_separator(seed: int = 0) -> model.StreamingSeparator:
    """A tiny random-weight causal separator (frame 32 at 22.05 kHz)."""
    torch.manual_seed(seed)
    return model.StreamingSeparator(model.RQVAESeparator(small_config()).eval())


def offline_reference(separator: model.StreamingSeparator, audio: np.ndarray, host_rate_hz: int,
                      gains: np.ndarray, prefill_samples: int, length: int) -> np.ndarray:
    """What the engine must play for ``audio [C, T]`` with constant stem ``gains [S]`` and wet = 1.

    The offline separation (``separate`` at the model's rate, of the input resampled by the
    same resampler) and the resampled input beside it (the dry channel) are delayed by the
    model's latency and resampled back; at another rate than the model's the band above the
    model's goes back in (:class:`rt.fullband.FullBandSplitter` over the whole signal); then the
    stems are mixed and preceded by the prefill: ``[C, length]``.
    """
    sep = model.StreamingSeparator(separator.model)  # its own copy of the network: fresh state
    channels, n_stems = audio.shape[0], len(sep.stems)
    if host_rate_hz == sep.sample_rate_hz:
        stems = sep.separate(audio)
        delayed = np.concatenate([np.zeros(stems.shape[:2] + (sep.latency_samples,), np.float32), stems], axis=2)
        host = delayed[..., :audio.shape[1]]
    else:
        down, up = resamplers(sep, host_rate_hz, channels, (n_stems + 1) * channels)
        at_model_rate = np.concatenate([down.process(audio), down.flush()], axis=1)
        both = np.concatenate([sep.separate(at_model_rate), at_model_rate[None]])  # stems + dry [S + 1, C, m]
        delayed = np.concatenate([np.zeros(both.shape[:2] + (sep.latency_samples,), np.float32), both], axis=2)
        host = up.process(delayed.reshape((n_stems + 1) * channels, -1)).reshape(n_stems + 1, channels, -1)
        n = min(host.shape[-1], audio.shape[1])
        delay = round(latency_breakdown(sep, host_rate_hz).engine_samples)
        splitter = FullBandSplitter(n_stems, channels, delay, host_rate_hz, sep.sample_rate_hz)
        host = splitter.process(audio[:, :n], host[n_stems, :, :n], host[:n_stems, :, :n])
    mixed = np.einsum("s,scn->cn", gains.astype(np.float32), host)
    y = np.concatenate([np.zeros((channels, prefill_samples), np.float32), mixed], axis=1)
    return y[:, :length]


def fitted_delay_samples(y: np.ndarray, start: int, freq_hz: float, rate_hz: int) -> float:
    """Delay ``d`` of ``y[k] = A sin(w (k - d))`` by least squares (``y`` starts at index ``start``)."""
    w = 2 * np.pi * freq_hz / rate_hz
    k = np.arange(start, start + y.shape[0])
    a, b = np.linalg.lstsq(np.stack([np.sin(w * k), np.cos(w * k)], 1), y, rcond=None)[0]
    return float(-np.arctan2(b, a) / w)
