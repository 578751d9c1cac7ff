"""The measured round trip through the live engine on a JACK dummy server equals the reported latency."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model
from latency.roundtrip import TOLERANCE_SAMPLES, measure_roundtrip
from rt.delays import latency_breakdown
from tests.helpers import small_config
from tests.rt.jack_server import JACK_RATE_HZ, jackd_installed

pytestmark = pytest.mark.skipif(not jackd_installed(), reason="jackd (jackd2) is not installed")

PREFILL_SAMPLES = 2048  # the worker must keep up on a loaded two-core machine


@pytest.fixture(scope="module")
def jack_up():
    from tests.rt.jack_server import jack_server

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with jack_server():
        yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("path,mode", [("wet", "callback"), ("dry", "callback"), ("wet", "worker")])
def test_measured_round_trip_equals_reported_latency(jack_up, path, mode):
    torch.manual_seed(0)  # untrained: each stem is about half the mixture, delayed as the model reports
    net = model.RQVAESeparator(small_config()).eval()
    result = measure_roundtrip(model.StreamingSeparator(net), path=path, prefill_samples=PREFILL_SAMPLES,
                               attempts=5, log=lambda _line: None, mode=mode)
    # on a loaded machine the dummy driver xruns: runs are retried, and the frame-time placement
    # plus the correlation over the whole signal keep a lost cycle from moving the estimate
    parts = result.reported
    assert result.mode == mode
    # what the round trip expects is what the engine reports for this model, rate and prefill
    reported = latency_breakdown(model.StreamingSeparator(net), JACK_RATE_HZ,
                                 prefill_samples=PREFILL_SAMPLES if mode == "worker" else 0)
    assert result.expected_samples == pytest.approx(reported.engine_samples)
    # callback mode has no prefill: the engine's latency is the resamplers' and the model's
    assert parts["ring_prefill_samples"] == (PREFILL_SAMPLES if mode == "worker" else 0)
    # the report is consistent: a stream that missed cycles never shows 0 xruns
    assert result.stream_ran_every_cycle == (result.missed_cycles == 0)
    assert result.xruns >= result.missed_cycles
    assert [s.signal for s in result.signals] == ["impulse 1", "impulse 2", "impulse 3", "sweep"]
    assert sum(s.correlation > 0.3 for s in result.signals) >= 2, result.to_dict()
    assert abs(result.measured_samples - result.expected_samples) <= TOLERANCE_SAMPLES, result.to_dict()
    if result.stream_ran_every_cycle:  # else a signal in flight across a missed cycle is a period late, or lost
        assert all(abs(s.error_samples) <= TOLERANCE_SAMPLES and s.correlation > 0.3
                   for s in result.signals), result.to_dict()
    assert result.agree, result.to_dict()


def test_random_weights_on_the_wet_path_are_reported_unreliable(jack_up):
    torch.manual_seed(0)
    # at the server's own rate (48 kHz), so no band above the model's is put back by the full-band
    # step (which would carry the input's top band into the wet path, exactly delayed)
    net = model.RQVAESeparator(small_config(sample_rate_hz=48000)).eval()
    with torch.no_grad():  # silence the stems: nothing of the input comes out of the wet path
        net.synthesis.conv.weight.zero_()
        if net.synthesis.conv.bias is not None:  # the synthesis may be bias-free
            net.synthesis.conv.bias.zero_()
    result = measure_roundtrip(model.StreamingSeparator(net), path="wet", prefill_samples=PREFILL_SAMPLES,
                               attempts=1, log=lambda _line: None)
    assert not result.agree
    assert "does not resemble the input" in result.note and "--path dry" in result.note
    assert all(s.correlation < 0.05 for s in result.signals)
    assert np.isnan(result.measured_samples)
