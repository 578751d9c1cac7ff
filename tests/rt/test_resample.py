"""StreamingResampler: exact delay, chunking invariance, flush, round trip, passthrough."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rt.resample import StreamingResampler
from tests.rt.helpers import fitted_delay_samples

HOST_RATES_HZ = (44100, 48000, 96000)
MODEL_RATE_HZ = 22050
PAIRS = [(h, MODEL_RATE_HZ) for h in HOST_RATES_HZ] + [(MODEL_RATE_HZ, h) for h in HOST_RATES_HZ]


def stream_in_chunks(resampler: StreamingResampler, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Feed ``x [C, T]`` in random chunk sizes (zero-length ones included), concatenating the outputs."""
    outs, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(0, 600))
        outs.append(resampler.process(x[:, pos:pos + n]))
        pos += n
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("in_rate_hz,out_rate_hz", PAIRS)
def test_sine_comes_out_delayed_by_exactly_delay_samples(in_rate_hz, out_rate_hz, rng):
    freq_hz = 211.0  # period > twice any delay here, so the fitted phase is unambiguous
    x = np.sin(2 * np.pi * freq_hz * np.arange(in_rate_hz // 2) / in_rate_hz).astype(np.float32)
    resampler = StreamingResampler(in_rate_hz, out_rate_hz, 2)
    y = stream_in_chunks(resampler, np.stack([x, -0.5 * x]), rng)
    assert y.shape[1] == math.ceil(x.shape[0] * out_rate_hz / in_rate_hz)
    skip = 500  # past the start-up transient of the filter
    steady = y[:, skip:-skip]
    delay = fitted_delay_samples(steady[0], skip, freq_hz, out_rate_hz)
    assert abs(delay - resampler.delay_samples) < 0.05
    k = np.arange(skip, skip + steady.shape[1])
    ideal = np.sin(2 * np.pi * freq_hz * (k - resampler.delay_samples) / out_rate_hz)
    np.testing.assert_allclose(steady[0], ideal, atol=1e-3)
    np.testing.assert_allclose(steady[1], -0.5 * ideal, atol=1e-3)


@pytest.mark.parametrize("in_rate_hz,out_rate_hz", [(48000, 22050), (22050, 44100)])
def test_output_does_not_depend_on_chunking_and_flush_completes_the_tail(in_rate_hz, out_rate_hz, rng):
    x = rng.standard_normal((1, 5000)).astype(np.float32)
    whole = StreamingResampler(in_rate_hz, out_rate_hz, 1)
    reference = np.concatenate([whole.process(x), whole.flush()], axis=1)
    chunked = StreamingResampler(in_rate_hz, out_rate_hz, 1)
    y = np.concatenate([stream_in_chunks(chunked, x, rng), chunked.flush()], axis=1)
    np.testing.assert_allclose(y, reference, rtol=0, atol=1e-6)
    expected_total = math.ceil(x.shape[1] * out_rate_hz / in_rate_hz + whole.delay_samples)
    assert reference.shape[1] == expected_total
    # flush() reset the stream: the same input gives the same output again
    np.testing.assert_allclose(np.concatenate([whole.process(x), whole.flush()], axis=1), reference, atol=1e-6)


def test_round_trip_through_the_model_rate_is_the_input_delayed_by_the_sum_of_delays(rng):
    host_hz = 48000
    down = StreamingResampler(host_hz, MODEL_RATE_HZ, 1)
    up = StreamingResampler(MODEL_RATE_HZ, host_hz, 1)
    # band-limited well inside the pass band of both filters: a few sines below 8 kHz
    t = np.arange(host_hz // 2) / host_hz
    freqs_hz, phases = rng.uniform(100, 8000, 6), rng.uniform(0, 2 * np.pi, 6)
    x = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs_hz, phases)).astype(np.float32)[None] / 6
    y = np.concatenate([up.process(down.process(x[:, i:i + 256])) for i in range(0, x.shape[1], 256)], axis=1)
    total_delay = down.delay_samples * host_hz / MODEL_RATE_HZ + up.delay_samples
    k = np.arange(y.shape[1])[1000:-1000]
    ideal = sum(np.sin(2 * np.pi * f * (k - total_delay) / host_hz + p) for f, p in zip(freqs_hz, phases)) / 6
    np.testing.assert_allclose(y[0, 1000:-1000], ideal, atol=2e-3)


def test_equal_rates_are_an_exact_passthrough(rng):
    resampler = StreamingResampler(48000, 48000, 2)
    x = rng.standard_normal((2, 777)).astype(np.float32)
    assert resampler.delay_samples == 0.0
    np.testing.assert_array_equal(resampler.process(x), x)
    assert resampler.flush().shape == (2, 0)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="in_rate_hz must be a positive integer"):
        StreamingResampler(0, 22050, 1)
    with pytest.raises(ValueError, match=r"expected a \[channels=2, samples\] array"):
        StreamingResampler(48000, 22050, 2).process(np.zeros((1, 10), np.float32))
