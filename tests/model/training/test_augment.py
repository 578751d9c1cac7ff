"""The training sampler puts the song's non-target instruments (the rest) in the mixture."""
import numpy as np

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
