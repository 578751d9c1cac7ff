"""Callback mode on a real JACK server (dummy driver): odd block sizes play every sample, the
mode rule, and the block-size errors."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from rt.engine import CALLBACK_LOAD_LIMIT, BlockSizeError, Engine, choose_mode
from tests.rt.helpers import small_separator
from tests.rt.jack_server import jackd_installed
from tests.rt.test_live_jack import PlayRecord

ATTEMPTS = 6  # a loaded machine makes the dummy driver xrun; a run that saw one is retried


@pytest.mark.skipif(not jackd_installed(), reason="jackd (jackd2) is not installed")
@pytest.mark.parametrize("blocksize", [100, 129, 1000])
def test_odd_block_sizes_play_every_sample_in_callback_mode(jack, blocksize):
    """PortAudio calls back with ``blocksize`` frames whatever JACK's period (it buffers between
    them, outside the engine). A sine through the engine's dry path (the model-rate FIFO, the
    queue the stems ride and both resamplers) must come out as one clean sine: a lost, repeated
    or zeroed sample anywhere would leave a residual far above the resamplers' 1e-3."""
    from rt.live import LiveStream, choose_devices

    choice = choose_devices(None, None)
    rate = choice.sample_rate_hz
    freq_hz = 441.0
    x = (0.5 * np.sin(2 * np.pi * freq_hz * np.arange(rate // 5) / rate)).astype(np.float32)  # short: fewer xruns
    failures = []
    for attempt in range(ATTEMPTS):
        engine = Engine(small_separator(), rate, 1, blocksize, mode="callback")
        engine.mixer.set_wet(0.0)
        settle = math.ceil(engine.latency().engine_samples) + 2 * blocksize + 2048  # PortAudio's buffering too
        io = PlayRecord(jack, engine, x, x.shape[0])
        stream = LiveStream(engine, choice, blocksize=blocksize)
        with stream:
            io.connect()
            time.sleep(0.2)
            flags_before = stream.status_flags
            io.started = True
            deadline = time.monotonic() + 10 + 4 * x.shape[0] / rate
            while io.rec_pos < io.recorded.shape[0] and time.monotonic() < deadline:
                time.sleep(0.05)  # (JACK may drop a client that stalls on an overloaded machine)
            flags = stream.status_flags - flags_before
        io.close()
        stats = engine.stats()
        engine.close()
        assert stats.underrun_samples == 0  # callback mode cannot underrun: the output is always ready
        assert stats.callbacks > 0 and stats.samples_in == stats.samples_out
        if io.rec_pos < io.recorded.shape[0]:
            failures.append(f"attempt {attempt}: the JACK recorder stopped after {io.rec_pos} samples")
            continue
        y = io.recorded[settle:]
        amplitude, residual = _sine_fit(y, freq_hz, rate)
        if abs(amplitude - 0.5) < 1e-2 and residual < 1e-3:
            return
        failures.append(f"attempt {attempt}: amplitude {amplitude:.3f}, residual {residual:.3g}, status flags {flags}, "
                        f"late callbacks {stats.late_callbacks}")
    pytest.fail("the sine never came through clean (xruns on a loaded machine, or lost samples): "
                + "; ".join(failures))


def _sine_fit(y: np.ndarray, freq_hz: float, rate_hz: int) -> tuple[float, float]:
    """Amplitude of the least-squares fit ``a sin(w k) + b cos(w k)`` of ``y`` and ``y``'s largest deviation from it."""
    w = 2 * np.pi * freq_hz / rate_hz
    k = np.arange(y.shape[0])
    basis = np.stack([np.sin(w * k), np.cos(w * k)], 1)
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    return float(np.hypot(*coef)), float(np.abs(y - basis @ coef).max())


def test_the_mode_rule():
    nan = float("nan")
    assert choose_mode("auto", True, 5.8, CALLBACK_LOAD_LIMIT * 5.8, 1.0).mode == "callback"
    assert choose_mode("auto", True, 5.8, CALLBACK_LOAD_LIMIT * 5.8 + 0.01, 1.0).mode == "worker"
    assert choose_mode("auto", False, 5.8, nan, nan).mode == "worker"  # torch backend (e.g. CUDA)
    assert choose_mode("worker", True, 5.8, 0.1, 0.1).mode == "worker"
    assert choose_mode("callback", True, 5.8, 5.0, 1.0).mode == "callback"
    with pytest.raises(BlockSizeError, match="shorter than the callback's measured p99 .* use a larger block"):
        choose_mode("callback", True, 2.0, 2.5, 1.0)
    with pytest.raises(BlockSizeError, match="slower than real time"):
        choose_mode("auto", True, 2.0, 2.5, 2.1)
    with pytest.raises(ValueError, match="use mode 'worker'"):
        choose_mode("callback", False, 5.8, nan, nan)
    with pytest.raises(ValueError, match="unknown engine mode 'fast'"):
        Engine(small_separator(), 48000, 1, 256, mode="fast")


def test_auto_decides_from_the_measured_block_compute():
    engine = Engine(small_separator(), 48000, 1, 256)
    d = engine.decision
    assert d.requested == "auto" and d.compute_p99_ms > 0 and d.period_ms == pytest.approx(1000 * 256 / 48000)
    assert d.mode == ("callback" if d.compute_p99_ms <= CALLBACK_LOAD_LIMIT * d.period_ms else "worker")
    assert engine.mode == d.mode
    engine.close()


def test_a_block_too_short_for_the_callback_is_a_clear_error():
    """One sample per callback: every callback pays the per-call overhead of the whole pipeline,
    far more than the 21 us a sample lasts at 48 kHz."""
    with pytest.raises(BlockSizeError, match="use a smaller model|use a larger block"):
        Engine(small_separator(), 48000, 1, 1, mode="callback")


def test_the_callback_never_waits_for_the_controls_lock():
    """Setters serialise on the mixer's lock; the audio side only reads the published targets.
    With the lock held (a setter mid-update, or stuck), callbacks still run, and the next
    published change reaches them."""
    engine = Engine(small_separator(), 48000, 1, 256, mode="callback")
    engine.prepare()
    indata = np.full((256, 1), 0.5, np.float32)
    outdata = np.zeros((256, 1), np.float32)
    done = threading.Event()

    def run_callbacks() -> None:
        for _ in range(50):
            engine.callback(indata, outdata)
        done.set()

    with engine.mixer._lock:
        worker = threading.Thread(target=run_callbacks)
        worker.start()
        assert done.wait(10.0), "the callback blocked on the controls' lock"
    worker.join()
    engine.mixer.set_wet(0.0)  # dry: the input delayed, after a ramp
    for _ in range(20):
        engine.callback(indata, outdata)
    np.testing.assert_allclose(outdata[:, 0], 0.5, atol=1e-3)
    engine.close()
