"""Engine driven from arrays: exact output vs offline separation, exact latency, underruns, no drift."""
from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from rt.engine import Engine
from rt.filedrive import drive
from tests.rt.helpers import fitted_delay_samples, offline_reference, small_separator


def music_like(channels: int, n: int, rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A few sines plus noise, ``[C, n]`` float32."""
    t = np.arange(n) / rate_hz
    x = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(rng.uniform(60, 4000, 5), rng.uniform(0, 6, 5)))
    return (0.1 * x + 0.05 * rng.standard_normal((channels, n))).astype(np.float32)


@pytest.mark.parametrize("mode", ["callback", "worker"])
@pytest.mark.parametrize("host_rate_hz,channels,block", [(48000, 2, 256), (44100, 1, 128), (22050, 2, 100),
                                                         (44100, 2, 129)])
def test_output_is_the_offline_separation_delayed_by_the_reported_latency(host_rate_hz, channels, block, mode, rng):
    separator = small_separator()
    engine = Engine(separator, host_rate_hz, channels, block, stems=["drums", "bass"], mode=mode)
    assert engine.mode == mode and (engine.prefill_samples == 0) == (mode == "callback")
    engine.mixer.set_gain_db("bass", -6.0)
    x = music_like(channels, host_rate_hz // 2, host_rate_hz, rng)
    y = drive(engine, x)
    gains = np.array([10 ** (-6 / 20), 1.0, 0.0, 0.0])  # bass, drums, guitar, piano
    x_and_tail = np.pad(x, ((0, 0), (0, y.shape[1] - x.shape[1])))
    expected = offline_reference(separator, x_and_tail, host_rate_hz, gains, engine.prefill_samples, y.shape[1])
    assert np.abs(expected).max() > 0.01
    np.testing.assert_allclose(y, expected, atol=2e-4)  # float noise of chunked vs whole-signal runs
    stats = engine.stats()
    assert stats.underrun_samples == 0 and stats.skipped_output_samples == 0
    assert stats.samples_in == stats.samples_out == -(-y.shape[1] // block) * block
    engine.close()


@pytest.mark.parametrize("host_rate_hz,mode", [(44100, "callback"), (48000, "callback"), (96000, "callback"),
                                               (44100, "worker")])
def test_reported_latency_is_the_measured_delay_to_a_twentieth_of_a_sample(host_rate_hz, mode):
    engine = Engine(small_separator(), host_rate_hz, 1, 256, mode=mode)
    engine.mixer.set_wet(0.0)  # the dry path takes every delay the stems take
    freq_hz = 13.0  # half a period exceeds every latency here: the fitted phase is unambiguous
    x = np.sin(2 * np.pi * freq_hz * np.arange(host_rate_hz // 2) / host_rate_hz).astype(np.float32)[None]
    y = drive(engine, x)
    latency = engine.latency()
    skip = int(latency.engine_samples) + 1000
    delay = fitted_delay_samples(y[0, skip:x.shape[1]], skip, freq_hz, host_rate_hz)
    assert abs(delay - latency.engine_samples) < 0.05
    assert latency.total_samples == latency.engine_samples  # no device in file mode
    assert latency.as_dict()["total_ms"] == pytest.approx(1000 * latency.engine_samples / host_rate_hz)
    engine.close()


class SlowSeparator:
    """A real separator whose calls number ``slow_calls`` each sleep ``delay_s`` first (a model that stalls).

    It says its backend is torch, so the engine calls its ``process`` (worker mode) rather than
    running the numba frame step itself."""

    backend = "torch"

    def __init__(self, delay_s: float, slow_calls: range) -> None:
        self._inner = small_separator()
        self.delay_s = delay_s
        self.slow_calls = slow_calls
        self.calls = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls in self.slow_calls:
            time.sleep(self.delay_s)
        return self._inner.process(block)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@pytest.mark.parametrize("input_ring_samples", [None, 3072])
def test_a_slow_model_underruns_without_drift(input_ring_samples):
    """A model that stalls for 0.6 s: silence and counted underruns (and dropped input when the
    input ring is small), equal sample counts, and every sample that is played sits at its
    place on the timeline (no drift)."""
    host_rate_hz, block = 22050, 1024  # large blocks: the worker keeps up on a loaded 2-core machine
    slow = SlowSeparator(delay_s=0.2, slow_calls=range(8, 11))  # stalls 0.6 s from about 0.3 s in
    engine = Engine(slow, host_rate_hz, 1, block, prefill_samples=2 * block,
                    input_ring_samples=input_ring_samples)
    assert engine.mode == "worker"  # no numba frame step: auto gives the worker
    engine.mixer.set_wet(0.0)  # output = input delayed by the latency, an exact integer at the model's rate
    n = 2 * host_rate_hz
    x = np.random.default_rng(3).uniform(0.1, 1.0, n).astype(np.float32)[None]  # never zero
    y = drive(engine, x, realtime=True)
    stats = engine.stats()
    assert engine.error is None
    assert stats.underrun_samples > 0
    assert stats.samples_in == stats.samples_out == y.shape[1] + (-y.shape[1]) % block
    latency = round(engine.latency().engine_samples)
    expected = np.zeros_like(y)
    expected[:, latency:latency + n] = x[:, :y.shape[1] - latency]
    played = y[0] != 0
    right = played & (np.abs(y[0] - expected[0]) < 1e-6)
    assert played[int(1.4 * host_rate_hz):n].mean() > 0.5  # the engine recovered after the stall
    if input_ring_samples is None:
        assert stats.dropped_input_samples == 0
        np.testing.assert_array_equal(right, played)  # every played sample is in its place
    else:
        # after dropped input only the dry delay line (the model latency) carries pre-gap samples
        assert stats.dropped_input_samples > 0
        wrong = np.count_nonzero(played & ~right)
        assert wrong <= engine.runtime.latency_samples * stats.worker_steps
        assert np.array_equal(right[int(1.4 * host_rate_hz):], played[int(1.4 * host_rate_hz):])
    engine.close()


@pytest.mark.parametrize("mode", ["callback", "worker"])
def test_the_callback_allocates_nothing_in_steady_state(mode):
    """No array is allocated: calling numba kernels from Python makes a few small transient
    objects (argument typing, well under 1 KiB at a time), so the bound is a quarter of one
    block's data; nothing stays allocated over 500 callbacks. tracemalloc sees every thread of
    the process (a thread an earlier test left running may allocate while we measure), so the
    transient peak is the smallest of three runs: an allocating callback would raise all three."""
    block = 1024
    engine = Engine(small_separator(), 48000, 2, block, mode=mode)
    engine.prepare()
    indata = np.ones((block, 2), np.float32)
    outdata = np.zeros((block, 2), np.float32)
    for _ in range(20):
        engine.callback(indata, outdata)
        engine.step()
    peaks_bytes = []
    for _ in range(3):
        tracemalloc.start()
        try:
            start_bytes, _ = tracemalloc.get_traced_memory()
            for _ in range(500):
                engine.callback(indata, outdata)
            end_bytes, peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert end_bytes - start_bytes < 1024
        peaks_bytes.append(peak_bytes - start_bytes)
    assert min(peaks_bytes) < indata.nbytes // 4, peaks_bytes
    if mode == "callback":
        assert engine.stats().callbacks == 1520 and engine.stats().underrun_samples == 0
    engine.close()


def test_bad_engine_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="mono or stereo"):
        Engine(small_separator(), 48000, 3, 256)
    with pytest.raises(ValueError, match="unknown stem 'vocals'; this model's stems are: bass, drums, guitar, piano"):
        Engine(small_separator(), 48000, 2, 256, stems=["vocals"])


@pytest.mark.parametrize("mode", ["callback", "worker"])
def test_stem_outputs_give_each_stem_its_own_channels(mode, rng):
    separator = small_separator()
    engine = Engine(separator, 48000, 2, 256, stems=["piano", "bass"], stem_outputs=True, mode=mode)
    assert engine.output_channels == 4
    x = music_like(2, 12000, 48000, rng)
    y = drive(engine, x)
    x_and_tail = np.pad(x, ((0, 0), (0, y.shape[1] - x.shape[1])))
    for group, gains in enumerate(([0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0])):  # piano, then bass
        expected = offline_reference(separator, x_and_tail, 48000, np.array(gains), engine.prefill_samples, y.shape[1])
        np.testing.assert_allclose(y[2 * group:2 * group + 2], expected, atol=2e-4)
    engine.close()
