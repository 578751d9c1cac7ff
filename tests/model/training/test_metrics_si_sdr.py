"""SI-SDR against a reference library and the paper's windowed SI-SDRi protocol on constructed cases."""
from __future__ import annotations

import numpy as np
import pytest
from museval.metrics import bss_eval

from model.training.metrics import si_sdr_db, windowed_si_sdri


def _textbook_si_sdr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Le Roux et al. 2019, eq. (5)-(6), written out directly (zero-mean signals)."""
    s = reference - reference.mean()
    s_hat = estimate - estimate.mean()
    alpha = np.dot(s_hat, s) / np.dot(s, s)
    target = alpha * s
    return float(10 * np.log10(np.dot(target, target) / np.dot(target - s_hat, target - s_hat)))


@pytest.mark.parametrize("noise", [0.05, 0.5, 3.0])
def test_si_sdr_matches_museval_bss_eval_with_a_one_tap_projection(rng, noise):
    # BSSEval's "sources" SDR with a 1-tap distortion filter is SI-SDR (projection onto the reference)
    ref = rng.standard_normal(3000)
    est = rng.uniform(0.2, 2.0) * ref + noise * rng.standard_normal(3000)
    ref, est = ref - ref.mean(), est - est.mean()
    sdr = bss_eval(ref[None, :, None], est[None, :, None], window=np.inf, compute_permutation=False,
                   filters_len=1, bsseval_sources_version=True)[0]
    assert si_sdr_db(est, ref) == pytest.approx(float(sdr[0, 0]), abs=1e-6)


def test_si_sdr_matches_the_textbook_formula_on_random_signals_with_offsets(rng):
    refs = rng.standard_normal((5, 2000)) + rng.normal(0, 1, (5, 1))  # non-zero means
    ests = refs * rng.uniform(-2, 2, (5, 1)) + rng.uniform(0.1, 2, (5, 1)) * rng.standard_normal((5, 2000))
    ours = si_sdr_db(ests, refs)
    assert ours.shape == (5,)
    for k in range(5):
        assert ours[k] == pytest.approx(_textbook_si_sdr_db(ests[k], refs[k]), abs=1e-6)


def test_si_sdr_is_scale_invariant_and_orders_by_noise(rng):
    ref = rng.standard_normal(4000)
    noise = rng.standard_normal(4000)
    assert si_sdr_db(3.7 * (ref + 0.1 * noise), ref) == pytest.approx(si_sdr_db(ref + 0.1 * noise, ref), abs=1e-6)
    assert si_sdr_db(ref + 0.1 * noise, ref) > si_sdr_db(ref + 0.5 * noise, ref) + 10


SR = 100  # Hz: 4 s windows = 400 samples, 2 s hop = 200


def _tone(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def test_windows_are_4s_with_a_2s_hop_and_estimate_equal_to_mixture_scores_zero(rng):
    refs = np.stack([_tone(1000, rng) for _ in range(3)])  # 10 s: windows start at 0, 2, 4, 6 s
    mix = refs.sum(0)
    scores = windowed_si_sdri(np.broadcast_to(mix, refs.shape), refs, mix, SR)
    assert scores.shape == (4, 3)
    np.testing.assert_allclose(scores, 0.0, atol=1e-9)


def test_each_window_scores_only_its_own_samples(rng):
    refs = np.stack([_tone(1000, rng) for _ in range(2)])
    mix = refs.sum(0)
    est = refs.copy()
    est[0, 400:] = mix[400:]  # stem 0 perfect up to 4 s, then the mixture
    scores = windowed_si_sdri(est, refs, mix, SR)
    assert scores[0, 0] > 60                       # window 0-4 s: exact estimate
    assert 0.0 < scores[1, 0] < scores[0, 0] - 30  # window 2-6 s: partly the mixture
    assert scores[2, 0] == pytest.approx(0.0, abs=1e-9)  # window 4-8 s: mixture only
    manual = si_sdr_db(est[0, 200:600], refs[0, 200:600]) - si_sdr_db(mix[200:600], refs[0, 200:600])
    assert scores[1, 0] == pytest.approx(manual)


def test_windows_with_fewer_than_two_active_stems_are_skipped_and_inactive_stems_are_nan(rng):
    n = 1000
    refs = np.zeros((3, n))
    refs[0] = _tone(n, rng)             # always active
    refs[1, :400] = _tone(400, rng)     # active in window 0 (0-4 s) and, partly, window 1 (2-6 s)
    refs[2, 800:] = _tone(200, rng)     # active only in the last window (6-10 s)
    mix = refs.sum(0)
    scores = windowed_si_sdri(refs + 0.01 * rng.standard_normal(refs.shape), refs, mix, SR)
    # window 2 (4-8 s) has only stem 0 active -> skipped; windows 0, 1, 3 kept
    assert scores.shape == (3, 3)
    assert np.isfinite(scores[0, :2]).all() and np.isnan(scores[0, 2])
    assert np.isfinite(scores[1, :2]).all() and np.isnan(scores[1, 2])
    assert np.isnan(scores[2, 1]) and np.isfinite(scores[2, [0, 2]]).all()


def test_all_silent_but_one_gives_no_windows_and_a_short_track_is_one_window(rng):
    refs = np.zeros((2, 1000))
    refs[0] = _tone(1000, rng)
    assert windowed_si_sdri(refs, refs, refs.sum(0), SR).shape == (0, 2)
    short = np.stack([_tone(250, rng), _tone(250, rng)])  # 2.5 s < one 4 s window
    scores = windowed_si_sdri(short, short, short.sum(0), SR)
    assert scores.shape == (1, 2) and (scores > 60).all()
