"""Chain: native pedalboard plugins and Python processors together, latency reported and compensated."""
from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from pedalboard import Compressor, Gain, LowpassFilter, Resample, Reverb

from plugin_host import Chain
from tests.plugin_host.helpers import noise, rel_err

RATE = 44100


def stream(processor, x: np.ndarray, rate: int, block: int) -> np.ndarray:
    processor.reset()
    return np.concatenate([processor.process(x[:, i:i + block], rate, reset=False)
                           for i in range(0, x.shape[1], block)], axis=1)


def test_gain_separator_reverb_equals_each_by_hand(separator):
    x = noise(2, 2000)
    gain, reverb = Gain(gain_db=-4.0), Reverb(room_size=0.6)
    chain = Chain([gain, separator, reverb])
    by_hand = reverb(separator(gain(x, RATE), RATE), RATE)
    assert np.array_equal(chain(x, RATE), by_hand)
    assert chain.latency_samples == separator.latency_at(RATE)
    assert [type(s).__name__ for s in chain.stages()] == ["_NativeStage", "_PythonStage", "_NativeStage"]


def test_streaming_chain_equals_each_streamed_by_hand_and_is_delayed(separator):
    x = noise(2, 2000)
    gain, reverb = Gain(gain_db=3.0), Reverb(room_size=0.3)
    chain = Chain([gain, separator, reverb])
    streamed = stream(chain, x, RATE, 256)
    by_hand = stream(reverb, stream(separator, stream(gain, x, RATE, 256), RATE, 256), RATE, 256)
    assert rel_err(streamed, by_hand) < 1e-6
    # with no effect after the separator, streaming is the aligned output shifted by the latency
    plain = Chain([Gain(gain_db=3.0), separator])
    aligned, lat = plain(x, RATE), plain.latency_samples
    assert rel_err(stream(plain, x, RATE, 300)[:, lat:], aligned[:, :-lat]) < 1e-5


def test_native_runs_match_one_pedalboard():
    x = noise(2, 5000)
    plugins = [Gain(gain_db=2.0), LowpassFilter(cutoff_frequency_hz=3000), Compressor(threshold_db=-10, ratio=3)]
    chain = Chain(plugins)
    assert len(chain.stages()) == 1
    assert np.array_equal(chain(x, RATE), pedalboard.Pedalboard(plugins)(x, RATE))
    assert chain.latency_at(RATE) == 0


def test_native_plugin_latency_is_reported_and_compensated():
    """pedalboard's Resample plugin has latency: an impulse streamed through the chain comes out
    latency_samples after where reset=True puts it."""
    x = np.zeros((2, 8192), np.float32)
    x[:, 1000] = 1.0
    chain = Chain([Gain(gain_db=0.0), Resample(target_sample_rate=8000)])
    aligned = chain(x, RATE)
    lat = chain.latency_at(RATE, block_samples=256)
    assert lat > 0
    streamed = stream(chain, x, RATE, 256)
    assert chain.latency_samples == lat
    assert int(np.argmax(np.abs(aligned[0]))) == 1000
    assert int(np.argmax(np.abs(streamed[0]))) == 1000 + lat
    assert rel_err(streamed[:, lat:], aligned[:, :-lat]) < 1e-5


def test_native_latency_grows_with_a_warning_when_pedalboard_withholds_more():
    """Started with 8192-sample blocks, pedalboard's Resample withholds a little more once fed 256 at a
    time: the chain plays silence for the shortfall, warns, and the reported latency still says where
    the impulse comes out."""
    x = np.zeros((2, 40000), np.float32)
    x[:, 30000] = 1.0
    chain = Chain([Resample(target_sample_rate=8000)])
    first = chain.process(x[:, :8192], RATE, reset=False)
    start_latency = chain.latency_samples
    with pytest.warns(RuntimeWarning, match="withheld"):
        rest = [chain.process(x[:, i:i + 256], RATE, reset=False) for i in range(8192, 40000, 256)]
    streamed = np.concatenate([first, *rest], axis=1)
    assert streamed.shape == x.shape and chain.latency_samples > start_latency
    assert int(np.argmax(np.abs(streamed[0]))) == 30000 + chain.latency_samples


def test_latencies_add_up(separator):
    chain = Chain([Resample(target_sample_rate=8000), separator, Reverb()])
    assert chain.latency_at(48000) == Chain([Resample(target_sample_rate=8000)]).latency_at(48000) \
        + separator.latency_at(48000)
    with pytest.raises(RuntimeError, match="sample rate"):
        Chain([Gain()]).latency_samples


def test_layouts_and_dtype(separator):
    x = noise(2, 2000)
    chain = Chain([Gain(gain_db=1.0), separator])
    cf = chain(x.astype(np.float64), 48000)
    assert cf.dtype == np.float32 and cf.shape == (2, 2000)
    assert np.array_equal(chain(x.T.copy(), 48000), cf.T)
    assert chain(x[0], 48000).shape == (2000,)


def test_list_editing(separator):
    gain, reverb, comp = Gain(), Reverb(), Compressor()
    chain = Chain([gain])
    chain.append(reverb)
    chain.insert(1, separator)
    assert len(chain) == 3 and list(chain) == [gain, separator, reverb]
    assert chain[1] is separator and chain[-1] is reverb
    chain[0] = comp
    assert chain[0] is comp
    del chain[1]
    assert list(chain) == [comp, reverb] and len(chain.stages()) == 1
    chain.remove(reverb)
    assert list(chain) == [comp]
    with pytest.raises(TypeError, match="lacks process and latency_samples"):
        chain.append(object())
    with pytest.raises(TypeError, match="cannot go in a Chain"):
        Chain([Gain(), "Reverb"])


class HalfGain:
    """A plain Python processor with pedalboard's signature (no process_channels_first)."""

    latency_samples = 0

    def process(self, input_array, sample_rate, buffer_size=8192, reset=True):
        return 0.5 * np.asarray(input_array, np.float32)


class Truncating(HalfGain):
    def process(self, input_array, sample_rate, buffer_size=8192, reset=True):
        return np.asarray(input_array)[..., :-1]


def test_plain_python_processors_and_their_errors():
    x = noise(2, 1000)
    assert np.array_equal(Chain([HalfGain(), Gain(gain_db=6.0)])(x, RATE), Gain(gain_db=6.0)(0.5 * x, RATE))
    with pytest.raises(ValueError, match="must return as many samples"):
        Chain([Truncating()])(x, RATE)
    with pytest.raises(ValueError, match="ambiguous"):
        Chain([HalfGain()]).process_channels_first(noise(2, 2), RATE, reset=False)


def test_nested_chain_and_bad_input(separator):
    x = noise(2, 1500)
    inner = Chain([Gain(gain_db=-2.0), separator])
    outer = Chain([inner, Reverb()])
    assert np.array_equal(outer(x, RATE), Reverb()(inner(x, RATE), RATE))
    assert outer.latency_at(RATE) == separator.latency_at(RATE)
    assert outer.process_channels_first(np.zeros((2, 0), np.float32), RATE, reset=False).shape == (2, 0)
    assert outer(np.zeros((0, 2)), RATE).shape == (0, 2)
    with pytest.raises(TypeError, match="int16"):
        outer(np.zeros((2, 100), np.int16), RATE)
