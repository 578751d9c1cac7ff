"""The training sampler puts the song's non-target instruments (the rest) in the mixture, draws
tracks by their weights, and songs of another stem set are seen through the model's stems."""
import numpy as np
import pytest

from model.training.augment import RemixSampler
from model.training.data.track import Track


def test_rest_of_the_mixture_is_the_last_source_at_the_same_offset():
    t = np.arange(4000, dtype=np.float32)
    bass = (0.1 * (1 + t / 4000))[None]            # unique per sample: reveals the offset
    drums = (0.05 * np.sin(t * 0.37))[None]
    strings = (0.03 * np.cos(t * 0.011))[None]     # in the mixture, in no stem
    track = Track("song", bass + drums + strings, {"bass": bass, "drums": drums}, 22050)
    sampler = RemixSampler([track], ("bass", "drums"), 300, seed=3, remix_prob=0.0, gain_db=(0.0, 0.0))
    batch = sampler.batch(6)
    assert batch.shape == (6, 3, 300)
    for example in batch:
        offset = int(round((abs(example[0, 0]) / 0.1 - 1) * 4000))
        for row, source in zip(example, (bass, drums, strings)):
            np.testing.assert_allclose(np.abs(row), np.abs(source[0, offset:offset + 300]), atol=1e-6)


def test_rest_is_silent_when_the_stems_make_up_the_mixture():
    rng = np.random.default_rng(0)
    stems = {k: 0.1 * rng.standard_normal((2, 2000)).astype(np.float32) for k in ("vocals", "other")}
    track = Track("song", stems["vocals"] + stems["other"], stems, 22050)
    batch = RemixSampler([track], ("vocals", "other"), 500, seed=0).batch(4)
    assert np.abs(batch[:, :2]).max() > 0.01
    assert np.abs(batch[:, 2]).max() < 1e-6


def test_float16_songs_give_the_float32_batches_of_the_same_songs():
    """Training holds its songs as float16 (half the memory); batches stay float32 and equal, to
    float16's rounding of the rest, what the same songs held as float32 give."""
    rng = np.random.default_rng(1)
    stems = {k: (0.2 * rng.standard_normal((2, 3000))).astype(np.float16) for k in ("vocals", "drums")}
    strings = (0.1 * rng.standard_normal((2, 3000))).astype(np.float16)
    half = Track("song", (stems["vocals"] + stems["drums"] + strings), stems, 22050)
    full = half.astype(np.float32)
    batches = [RemixSampler([t, t], ("vocals", "drums"), 600, seed=2).batch(6, step=4) for t in (half, full)]
    assert batches[0].dtype == batches[1].dtype == np.float32
    assert np.abs(batches[1]).max() > 0.05
    np.testing.assert_allclose(batches[0], batches[1], rtol=0, atol=2e-3)
    assert half.astype(np.float16) is half and full.mixture.dtype == np.float32


def _constant_track(name: str, value: float, n: int = 2000) -> Track:
    """A track whose every sample of its one stem is ``value``: reveals which track was drawn."""
    stem = np.full((1, n), value, np.float32)
    return Track(name, stem.copy(), {"vocals": stem}, 22050)


def test_track_weights_set_the_share_of_draws():
    tracks = [_constant_track("a", 0.1), _constant_track("b", 0.2), _constant_track("c", 0.3)]
    sampler = RemixSampler(tracks, ("vocals",), 100, seed=5, remix_prob=1.0, gain_db=(0.0, 0.0),
                           track_weights=[3.0, 1.0, 0.0])
    drawn = np.abs(sampler.batch(2000, step=0)[:, 0, 0])
    assert not np.any(np.isclose(drawn, 0.3, atol=1e-6))  # weight 0: never drawn
    share_a = np.mean(np.isclose(drawn, 0.1, atol=1e-6))
    assert 0.72 < share_a < 0.78  # 3 : 1 (binomial sd 0.01 over 2000 draws)
    assert share_a + np.mean(np.isclose(drawn, 0.2, atol=1e-6)) == 1.0


def test_track_weights_need_one_weight_per_track():
    tracks = [_constant_track("a", 0.1), _constant_track("b", 0.2)]
    with pytest.raises(ValueError, match="one weight >= 0 per track"):
        RemixSampler(tracks, ("vocals",), 100, seed=0, track_weights=[1.0])
    with pytest.raises(ValueError, match="weight 0"):
        RemixSampler(tracks, ("vocals",), 100, seed=0, track_weights=[0.0, 0.0])


def test_a_slakh_song_seen_through_musdb_stems_puts_the_unassigned_instruments_in_other():
    rng = np.random.default_rng(1)
    parts = {k: 0.1 * rng.standard_normal((2, 3000)).astype(np.float32)
             for k in ("bass", "drums", "guitar", "piano", "strings")}
    mixture = sum(parts.values())
    song = Track("Track00001", mixture, {k: parts[k] for k in ("bass", "drums", "guitar", "piano")}, 22050)
    seen = song.onto_stems(("vocals", "drums", "bass", "other"))
    assert set(seen.stems) == {"drums", "bass", "other"}  # no vocals: the sampler draws silence
    np.testing.assert_allclose(seen.stems["other"], parts["guitar"] + parts["piano"] + parts["strings"], atol=1e-6)
    np.testing.assert_array_equal(seen.stems["bass"], parts["bass"])
    batch = RemixSampler([seen], ("vocals", "drums", "bass", "other"), 500, seed=0).batch(4)
    assert np.abs(batch[:, 0]).max() == 0.0  # vocals silent
    assert np.abs(batch[:, -1]).max() < 1e-6  # the stems make up the mixture: nothing left for the rest
    kept = song.onto_stems(("bass", "drums", "guitar", "piano"))  # no catch-all: strings stay in the rest
    assert set(kept.stems) == {"bass", "drums", "guitar", "piano"}
