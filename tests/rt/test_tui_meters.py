"""Level meters written by the mixer's audio path: post-gain levels, ballistics, no allocation."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from rt.meters import FLOOR_DB, PEAK_FALL_DB_PER_S, StemMeters
from rt.mixer import StemMixer

RATE_HZ = 22050
BLOCK = 256


def sine_block(amplitude: float, k0: int, channels: int = 2) -> np.ndarray:
    t = np.arange(k0, k0 + BLOCK) / RATE_HZ
    return np.repeat((amplitude * np.sin(2 * np.pi * 441.0 * t))[None], channels, 0).astype(np.float32)


def run_blocks(mixer: StemMixer, amplitudes: list[float], blocks: int, dry_amplitude: float = 0.5) -> np.ndarray:
    out = np.zeros((mixer.output_channels, BLOCK), np.float32)
    for b in range(blocks):
        stems = np.stack([sine_block(a, b * BLOCK) for a in amplitudes])
        mixer.mix_into(stems, sine_block(dry_amplitude, b * BLOCK), BLOCK, out)
    return out


@pytest.fixture
def mixer():
    m = StemMixer(("bass", "drums", "other"), 2, RATE_HZ)
    m.meters = StemMeters(3, RATE_HZ)
    m.meters.warmup()
    return m


def test_stem_meters_show_the_level_after_gain_mute_and_wet(mixer):
    mixer.set_gain_db("drums", -6.0)
    mixer.mute("other")
    mixer.set_wet(0.75)
    mixer.settle()
    run_blocks(mixer, [0.8, 0.8, 0.8], blocks=200)  # 2.3 s: 7.7 time constants of the RMS average
    peak_db, rms_db = mixer.meters.read_db()
    wet_db = 20 * np.log10(0.75)
    expected_peak = [20 * np.log10(0.8) + wet_db, 20 * np.log10(0.8) - 6.0 + wet_db]
    np.testing.assert_allclose(peak_db[:2], expected_peak, atol=0.02)
    np.testing.assert_allclose(rms_db[:2], np.array(expected_peak) - 3.01, atol=0.05)  # a sine's RMS
    assert peak_db[2] == rms_db[2] == FLOOR_DB  # muted from the start: silence
    np.testing.assert_allclose(peak_db[mixer.meters.input_row], 20 * np.log10(0.5), atol=0.02)
    # the output is 0.25 dry + the two audible stems, all in phase
    out_amplitude = 0.25 * 0.5 + 0.75 * 0.8 * (1 + 10 ** (-6 / 20))
    np.testing.assert_allclose(peak_db[mixer.meters.output_row], 20 * np.log10(out_amplitude), atol=0.02)
    assert mixer.meters.blocks[0] == 200


def test_a_muted_stem_falls_back_at_the_peak_fall_rate(mixer):
    run_blocks(mixer, [0.5, 0.5, 0.5], blocks=20)
    before, _ = mixer.meters.read_db()
    mixer.mute("bass")
    blocks = 86  # ~1 s
    run_blocks(mixer, [0.5, 0.5, 0.5], blocks=blocks)
    after, rms_after = mixer.meters.read_db()
    fallen_db = before[0] - after[0]
    # the 10 ms ramp holds the level for a few hundred samples, then it falls at PEAK_FALL_DB_PER_S
    expected = PEAK_FALL_DB_PER_S * (blocks * BLOCK - mixer.ramp_samples) / RATE_HZ
    assert fallen_db == pytest.approx(expected, abs=0.6)
    assert rms_after[0] < before[0] - 20  # RMS decays with its 0.3 s time constant (e^-3.3 in power)
    np.testing.assert_allclose(after[1], before[1], atol=0.01)  # the other stems are untouched


def test_meters_follow_frame_major_output_blocks():
    mixer = StemMixer(("a", "b"), 2, RATE_HZ, stem_outputs=True)
    mixer.meters = StemMeters(2, RATE_HZ)
    out = np.zeros((BLOCK, mixer.output_channels), np.float32)  # sounddevice's [n, C_out]
    stems = np.stack([sine_block(0.3, 0), sine_block(0.6, 0)])
    mixer.mix_into(stems, sine_block(0.1, 0), BLOCK, out, frame_major=True)
    peak_db, _ = mixer.meters.read_db()
    np.testing.assert_allclose(peak_db[[0, 1, 3]], 20 * np.log10([0.3, 0.6, 0.6]), atol=0.02)


def test_metering_allocates_nothing_per_block(mixer):
    stems = np.stack([sine_block(0.5, 0)] * 3)
    dry, out = sine_block(0.5, 0), np.zeros((2, BLOCK), np.float32)
    coeff = np.ones(4, np.float32)
    for _ in range(10):
        mixer.mix_into(stems, dry, BLOCK, out)
    tracemalloc.start()
    try:
        start_bytes, _ = tracemalloc.get_traced_memory()
        for _ in range(500):
            mixer.meters.update(stems, dry, BLOCK, coeff, out)
        end_bytes, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end_bytes - start_bytes < 1024
    assert peak_bytes - start_bytes < 1024


def test_bad_meter_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="n_stems >= 1"):
        StemMeters(0, RATE_HZ)
