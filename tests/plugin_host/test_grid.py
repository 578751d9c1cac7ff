"""pedalboard-style grids: StemSeparator and a Chain with real native plugins, over sample rate x
buffer size x channels.

The separator under test has random weights and mixture consistency: its stems sum to its input
(at other rates than the model's, the full-band step puts back the band above the model's), so
the mix of all its stems is the input itself, delayed by exactly ``latency_samples``. That
makes the delay measurable on any signal: a one-sample error fails every check below.
"""
from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import torch
from pedalboard import Gain, HighpassFilter, LowpassFilter

import model
from plugin_host import Chain, StemSeparator
from tests.helpers import small_config
from tests.plugin_host.helpers import noise, rel_err

RATES = (22050, 44100, 48000)  # the small model's own rate, a multiple of it, and another
BUFFER_SIZES = (1, 100, 128, 8192)  # 128 is four of the model's 32-sample frames
CHANNELS = (1, 2)
SAMPLES = 1000  # longer than any latency here (at most 118 samples)
MIX_TOLERANCE = 1e-5  # the stems' sum vs the input: float32 rounding through resamplers and model

grid_channels = pytest.mark.parametrize("channels", CHANNELS)
grid_rates = pytest.mark.parametrize("rate", RATES)
grid_buffers = pytest.mark.parametrize("buffer_size", BUFFER_SIZES)


@pytest.fixture(scope="module")
def consistent_net() -> model.RQVAESeparator:
    torch.manual_seed(0)
    return model.RQVAESeparator(small_config(mixture_consistency=True)).eval()


def feed(processor, block: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
    """One streaming call. pedalboard reads a ``[2, 1]`` block as one channel of two samples, so
    blocks no longer than the channel count go through the channels-first call instead."""
    if block.shape[1] <= block.shape[0]:
        return processor.process_channels_first(block, rate, buffer_size, reset=False)
    return processor.process(block, rate, buffer_size=buffer_size, reset=False)


def stream(processor, x: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
    """``x [C, T]`` streamed in blocks of ``buffer_size`` (each call checked to return its block's shape)."""
    pieces = []
    for i in range(0, x.shape[1], buffer_size):
        block = x[:, i:i + buffer_size]
        pieces.append(feed(processor, block, rate, buffer_size))
        assert pieces[-1].shape == block.shape and pieces[-1].dtype == np.float32
    return np.concatenate(pieces, axis=1)


def check_stream(processor, x: np.ndarray, rate: int, buffer_size: int, whole: np.ndarray) -> int:
    """Streaming in buffers, and in one streaming call, is the aligned output ``whole`` delayed by
    exactly ``latency_samples``; reset() makes a second pass identical. Returns the buffered
    stream's latency."""
    processor.reset()
    streamed = stream(processor, x, rate, buffer_size)
    lat = processor.latency_samples
    assert 0 < lat < x.shape[1]
    assert rel_err(streamed[:, lat:], whole[:, :-lat]) < 1e-5
    assert rel_err(streamed[:, lat - 1:-1], whole[:, :-lat]) > 1e-2  # one sample off would show
    processor.reset()
    assert np.array_equal(stream(processor, x, rate, buffer_size), streamed)
    processor.reset()
    one_call = feed(processor, x, rate, buffer_size)
    lat_one = processor.latency_samples
    assert rel_err(one_call[:, lat_one:], whole[:, :-lat_one]) < 1e-5
    return lat


@grid_channels
@grid_buffers
@grid_rates
def test_separator_grid(consistent_net, rate, buffer_size, channels):
    separator = StemSeparator(consistent_net)
    x = noise(channels, SAMPLES, seed=rate + channels)
    whole = separator.process(x, rate, buffer_size=buffer_size)
    assert whole.shape == x.shape and whole.dtype == np.float32
    assert separator.latency_samples == separator.latency_at(rate)
    assert rel_err(whole, x) < MIX_TOLERANCE  # aligned: the stems sum to the input, not a shifted copy of it
    stems = separator.separate(x, rate)
    assert rel_err(stems["drums"], x) > 0.1  # the stems are not the input (nor is any one stem)
    assert rel_err(sum(stems.values()), whole) < 1e-6
    assert check_stream(separator, x, rate, buffer_size, whole) == separator.latency_at(rate)


@grid_channels
@grid_buffers
@grid_rates
def test_chain_grid(consistent_net, rate, buffer_size, channels):
    """Native pedalboard plugins around the separator: each run on its own equals the chain, and
    since the separator's mix is its input, the chain equals the native plugins alone."""
    separator = StemSeparator(consistent_net)
    before = [Gain(gain_db=-6.0), HighpassFilter(cutoff_frequency_hz=60.0)]
    after = [LowpassFilter(cutoff_frequency_hz=6000.0), Gain(gain_db=3.0)]
    chain = Chain([*before, separator, *after])
    x = noise(channels, SAMPLES, seed=rate - channels)
    whole = chain.process(x, rate, buffer_size=buffer_size)
    assert whole.shape == x.shape and whole.dtype == np.float32
    by_hand = pedalboard.Pedalboard(after)(
        separator.process(pedalboard.Pedalboard(before)(x, rate, buffer_size=buffer_size), rate, buffer_size=buffer_size),
        rate, buffer_size=buffer_size)
    assert np.array_equal(whole, by_hand)
    assert rel_err(whole, pedalboard.Pedalboard([*before, *after])(x, rate)) < MIX_TOLERANCE
    # the native plugins add none, except that a [2, 1] block waits for the next (once per native run)
    held = 2 * max(channels - buffer_size, 0)
    assert check_stream(chain, x, rate, buffer_size, whole) == separator.latency_at(rate) + held
    assert chain.latency_samples == separator.latency_at(rate)  # the last stream was fed in one call
