"""StemMixer: gain laws, click-free ramps, dry/wet, stem outputs, thread-safe setters, errors."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from rt.mixer import StemMixer

STEMS = ("bass", "drums", "guitar", "piano")
RATE_HZ = 22050


def settle(mixer: StemMixer, stems: np.ndarray, dry: np.ndarray) -> np.ndarray:
    """Mix long enough for every ramp to finish, then return one more block's output."""
    mixer.mix(np.zeros((len(STEMS), dry.shape[0], mixer.ramp_samples + 1), np.float32),
              np.zeros((dry.shape[0], mixer.ramp_samples + 1), np.float32))
    return mixer.mix(stems, dry)


def distinct_stems(channels: int = 2, n: int = 64) -> np.ndarray:
    """Stem ``s`` is the constant ``10 ** s`` so a mix shows which stems (and gains) are in it."""
    return np.stack([np.full((channels, n), 10.0 ** i, np.float32) for i in range(len(STEMS))])


def test_select_mute_solo_and_gain_decide_what_is_heard():
    mixer = StemMixer(STEMS, 2, RATE_HZ)
    stems, dry = distinct_stems(), np.full((2, 64), 5000.0, np.float32)
    np.testing.assert_allclose(settle(mixer, stems, dry), 1111.0)
    mixer.select(["drums", "bass"])
    np.testing.assert_allclose(settle(mixer, stems, dry), 11.0)
    mixer.mute("bass")
    np.testing.assert_allclose(settle(mixer, stems, dry), 10.0)
    mixer.toggle_mute("bass")
    mixer.set_gain_db("drums", -20.0)
    np.testing.assert_allclose(settle(mixer, stems, dry), 2.0, rtol=1e-5)
    mixer.solo("piano")  # soloed but not selected: silence
    np.testing.assert_allclose(settle(mixer, stems, dry), 0.0)
    mixer.select(STEMS)
    np.testing.assert_allclose(settle(mixer, stems, dry), 1000.0)
    mixer.set_wet(0.25)
    np.testing.assert_allclose(settle(mixer, stems, dry), 0.25 * 1000 + 0.75 * 5000, rtol=1e-5)
    state = mixer.state()
    assert state.soloed == ("piano",) and state.wet == 0.25 and state.gains_db["drums"] == -20.0


def test_gain_changes_ramp_linearly_over_at_least_five_ms():
    mixer = StemMixer(STEMS, 1, RATE_HZ, ramp_ms=5.0)
    assert mixer.ramp_samples >= 5e-3 * RATE_HZ
    mixer.select(["bass"])
    settle(mixer, distinct_stems(1), np.zeros((1, 64), np.float32))
    ones = np.ones((len(STEMS), 1, 40), np.float32)
    outs = []
    mixer.mute("bass")  # 1 -> 0 while blocks of 40 samples go by
    for _ in range(6):
        outs.append(mixer.mix(ones, np.zeros((1, 40), np.float32))[0])
    y = np.concatenate(outs)
    ramp = mixer.ramp_samples
    np.testing.assert_allclose(y[:ramp], 1.0 - np.arange(1, ramp + 1) / ramp, atol=1e-5)
    assert np.all(y[ramp:] == 0.0)
    assert np.abs(np.diff(y)).max() <= 1.0 / ramp + 1e-6  # no step larger than one ramp increment


def test_a_change_in_the_middle_of_a_ramp_continues_from_where_it_is():
    mixer = StemMixer(STEMS, 1, RATE_HZ, ramp_ms=10.0)
    mixer.select(["bass"])
    settle(mixer, distinct_stems(1, 8), np.zeros((1, 8), np.float32))
    ones, dry = np.ones((len(STEMS), 1, 50), np.float32), np.zeros((1, 50), np.float32)
    mixer.mute("bass")
    first = mixer.mix(ones, dry)[0]
    mixer.mute("bass", False)
    second = mixer.mix(ones, dry)[0]
    y = np.concatenate([first, second])
    assert np.abs(np.diff(y)).max() <= 1.0 / mixer.ramp_samples + 1e-6
    assert second[0] > first[-1]  # turned around without a jump


def test_stem_outputs_put_each_stem_on_its_own_channels():
    mixer = StemMixer(STEMS, 2, RATE_HZ, stem_outputs=True, output_stems=["piano", "bass"])
    assert mixer.output_channels == 4
    mixer.set_gain_db("bass", -6.0)
    out = settle(mixer, distinct_stems(2), np.zeros((2, 64), np.float32))
    np.testing.assert_allclose(out[:2], 1000.0)
    np.testing.assert_allclose(out[2:], 10 ** (-6 / 20), rtol=1e-5)


def test_setters_from_another_thread_while_mixing_stay_consistent():
    mixer = StemMixer(STEMS, 1, RATE_HZ)
    stems, dry = distinct_stems(1, 32), np.zeros((1, 32), np.float32)
    stop = threading.Event()

    def twiddle() -> None:
        i = 0
        while not stop.is_set():
            mixer.set_gain_db("drums", -float(i % 40))
            mixer.toggle_mute("guitar")
            i += 1

    t = threading.Thread(target=twiddle)
    t.start()
    try:
        for _ in range(2000):
            assert np.isfinite(mixer.mix(stems, dry)).all()
    finally:
        stop.set()
        t.join()
    mixer.set_gain_db("drums", 0.0)
    mixer.mute("guitar", False)
    np.testing.assert_allclose(settle(mixer, stems, dry), 1111.0)


def test_unknown_stems_and_bad_values_are_clear_errors():
    mixer = StemMixer(STEMS, 1, RATE_HZ)
    with pytest.raises(ValueError, match="unknown stem 'vocals'; this model's stems are: bass, drums, guitar, piano"):
        mixer.select(["drums", "vocals"])
    with pytest.raises(ValueError, match="unknown stem 'voc'"):
        mixer.set_gain_db("voc", 0.0)
    with pytest.raises(ValueError, match="wet must be within"):
        mixer.set_wet(1.5)
    with pytest.raises(ValueError, match="at least 5.0 ms"):
        StemMixer(STEMS, 1, RATE_HZ, ramp_ms=1.0)
