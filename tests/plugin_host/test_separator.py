"""StemSeparator keeps pedalboard's invariants: buffer sizes, streaming vs reset, alignment, layouts."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, resample_poly, sosfiltfilt

import model
from plugin_host import StemSeparator
from rt.resample import StreamingResampler
from tests.plugin_host.helpers import noise, rel_err

MODEL_RATE = 22050
RATES = [MODEL_RATE, 44100, 48000, 96000]


@pytest.mark.parametrize("rate", [MODEL_RATE, 48000])
def test_buffer_sizes_give_the_same_output(separator, rate):
    x = noise(2, 600)
    outputs = {bs: separator.process(x, rate, buffer_size=bs) for bs in (1, 64, 65, 8193)}
    for bs, y in outputs.items():
        assert y.shape == x.shape and y.dtype == np.float32
        assert rel_err(y, outputs[8193]) < 1e-5, bs  # same frames, float rounding only
    assert np.abs(outputs[8193]).max() > 1e-3  # the model does produce output


@pytest.mark.parametrize("rate", RATES)
def test_streaming_is_reset_output_delayed_by_latency(separator, rate):
    x = noise(2, rate // 25)
    aligned = separator.process(x, rate)
    separator.reset()
    blocks, pieces, i = [3, 100, 7, 512, 33], [], 0  # a [2, 1] block would read as mono, as in pedalboard
    while i < x.shape[1]:
        n = blocks[len(pieces) % len(blocks)]
        pieces.append(separator.process(x[:, i:i + n], rate, reset=False))
        assert pieces[-1].shape == x[:, i:i + n].shape
        i += n
    streamed = np.concatenate(pieces, axis=1)
    lat = separator.latency_samples
    assert lat == separator.latency_at(rate) > 0
    assert rel_err(streamed[:, lat:], aligned[:, :-lat]) < 1e-5


def test_impulse_aligned_with_model_runtime_at_model_rate(separator):
    x = np.zeros((1, 2000), np.float32)
    x[0, 700] = 1.0
    expected = separator.runtime.separate(x).sum(axis=0)  # [C, T], aligned by the runtime itself
    y = separator.process(x, MODEL_RATE)
    assert np.abs(expected).max() > 1e-3
    assert rel_err(y, expected) < 1e-5
    assert separator.latency_at(MODEL_RATE) == separator.runtime.latency_samples


def _lowpass(x: np.ndarray, rate: int, cutoff_hz: float = 2000.0) -> np.ndarray:
    return sosfiltfilt(butter(6, cutoff_hz, fs=rate, output="sos"), x, axis=-1)


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_round_trip_matches_independent_zero_phase_reference(separator, rate):
    """Against scipy's zero-phase resample_poly around the runtime's aligned separate(): below 2 kHz
    (where both resamplers are flat) they agree, and a one-sample shift would not."""
    t = np.arange(rate // 4) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 555 * t + 1.0))[None].astype(np.float32)
    down = resample_poly(x, MODEL_RATE, rate, axis=-1).astype(np.float32)
    ref = resample_poly(separator.runtime.separate(down).sum(axis=0), rate, MODEL_RATE, axis=-1)[:, :x.shape[1]]
    y = separator.process(x, rate)
    edge = rate // 40  # filter start-up at both ends differs between the two designs
    ref_lp, y_lp = _lowpass(ref, rate)[:, edge:-edge], _lowpass(y, rate)[:, edge:-edge]
    assert np.abs(ref_lp).max() > 1e-3
    err = rel_err(y_lp, ref_lp)
    shifted = rel_err(_lowpass(np.roll(y, 1, axis=-1), rate)[:, edge:-edge], ref_lp)
    assert err < 0.05 and shifted > 2 * err, (err, shifted)


@pytest.mark.parametrize("rate", RATES)
def test_latency_is_the_sum_of_resamplers_and_model(separator, rate):
    parts = separator.latency_breakdown(rate)
    if rate == MODEL_RATE:
        assert parts.resampler_in_samples == parts.resampler_out_samples == 0
    else:
        to_host = rate / MODEL_RATE
        assert parts.resampler_in_samples == pytest.approx(StreamingResampler(rate, MODEL_RATE, 1).delay_samples * to_host)
        # the output resampler is padded by less than a host sample so that the whole delay is whole
        plain_out = StreamingResampler(MODEL_RATE, rate, 1).delay_samples
        assert plain_out <= parts.resampler_out_samples < plain_out + 1
        assert parts.engine_samples == pytest.approx(round(parts.engine_samples), abs=1e-9)
    assert parts.model_samples == pytest.approx(separator.runtime.latency_samples * rate / MODEL_RATE)
    assert separator.latency_at(rate) == round(parts.engine_samples)
    separator.process(noise(1, 300), rate)
    assert separator.latency_samples == separator.latency_at(rate)


def test_layouts_match_pedalboard(separator):
    x = noise(2, 3000)
    cf = separator.process(x, 44100)
    cl = separator.process(x.T.copy(), 44100)
    assert cl.shape == (3000, 2) and np.array_equal(cl, cf.T)
    mono = separator.process(x[0].astype(np.float64), 44100)
    assert mono.shape == (3000,) and mono.dtype == np.float32
    assert np.array_equal(mono, separator.process(x[:1], 44100)[0])
    assert cl.flags.c_contiguous and cf.flags.c_contiguous


def test_square_arrays_use_the_last_layout_until_reset(separator):
    square = noise(2, 2)
    with pytest.raises(ValueError, match="square"):
        separator.process(square, MODEL_RATE)
    separator.process(noise(500, 2), MODEL_RATE)  # channels-last seen
    y = separator.process(square, MODEL_RATE)  # read as [T, C]
    assert np.array_equal(y, separator.process_channels_first(np.ascontiguousarray(square.T), MODEL_RATE).T)
    separator.reset()
    with pytest.raises(ValueError, match="square"):
        separator.process(square, MODEL_RATE)


def test_selected_stems_and_gains(small_model_dir):
    x = noise(2, 2000)
    every = StemSeparator(str(small_model_dir)).separate(x, 44100)
    sep = StemSeparator(str(small_model_dir), stems=("drums", "bass"), gains_db={"drums": -6.0})
    expected = 10 ** (-6 / 20) * every["drums"] + every["bass"]
    assert rel_err(sep.process(x, 44100), expected) < 1e-5
    assert sep.stems == ("drums", "bass") and sep.gains_db == {"drums": -6.0, "bass": 0.0}


def test_separate_returns_every_stem_in_the_input_layout(separator):
    x = noise(2, 2500)
    stems = separator.separate(x.T.copy(), 48000)
    assert list(stems) == list(separator.model_stems)
    assert all(s.shape == (2500, 2) and s.dtype == np.float32 for s in stems.values())
    assert rel_err(sum(stems.values()).T, separator.process(x, 48000)) < 1e-5


def test_model_arguments(small_net, small_model_dir):
    runtime = model.StreamingSeparator(small_net)
    assert StemSeparator(runtime).runtime is runtime
    assert StemSeparator(small_net).stems == small_net.config.stems
    assert StemSeparator(small_model_dir, n_q=2).runtime.n_q == 2
    assert StemSeparator.is_effect and not StemSeparator.is_instrument
    with pytest.raises(model.CheckpointError, match="no model"):
        StemSeparator("/no/such/model")
    with pytest.raises(TypeError, match="source must be"):
        StemSeparator(42)


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 2)])
def test_empty_input_gives_empty_output_like_pedalboard(separator, shape):
    y = separator.process(np.zeros(shape, np.float32), 44100)
    assert y.shape == shape and y.dtype == np.float32
    assert all(v.shape == shape for v in separator.separate(np.zeros(shape), 44100).values())


def test_bad_arguments_are_refused_clearly(separator, small_model_dir):
    x = noise(2, 100)
    with pytest.raises(ValueError, match="no stem 'vox'.*bass, drums"):
        StemSeparator(str(small_model_dir), stems=("vox",))
    with pytest.raises(ValueError, match="not among the selected stems"):
        StemSeparator(str(small_model_dir), stems=("bass",), gains_db={"drums": 1.0})
    with pytest.raises(ValueError, match="finite"):
        StemSeparator(str(small_model_dir), gains_db={"bass": float("nan")})
    for rate in (0, -44100, 44100.5, float("inf")):
        with pytest.raises(ValueError, match="whole number of Hz"):
            separator.process(x, rate)
    with pytest.raises(ValueError, match="buffer_size"):
        separator.process(x, 44100, buffer_size=0)
    separator.process(x, 44100, reset=False)
    with pytest.raises(ValueError, match="reset"):
        separator.process(x, 48000, reset=False)
    with pytest.raises(ValueError, match="channel"):
        separator.process(noise(1, 100), 44100, reset=False)
