"""The shipped models load and beat the mixture on songs they were not trained on."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import model
from model.training.data import Track, list_slakh, read_musdb, read_slakh
from model.training.metrics import windowed_si_sdri
from model.training.render.dataset import DEFAULT_SOUNDFONT, render_dataset
from tests.helpers import MUSDB_TRAIN, REPO_ROOT

HELD_OUT = "Actions - One Minute Smile"  # a validation song of the shipped musdb4 (docs/models/musdb4.md)


def test_default_model_is_shipped_and_loads():
    assert model.DEFAULT_MODEL in model.shipped_models()
    sep = model.load(model.DEFAULT_MODEL)
    assert sep.stems == ("vocals", "drums", "bass", "other")
    assert sep.sample_rate_hz == 44100  # full band natively (docs/models/musdb4.md)


def test_shipped_musdb4_beats_the_mixture_on_a_held_out_song():
    path = MUSDB_TRAIN / f"{HELD_OUT}.stem.mp4"
    if not path.is_file():
        pytest.skip(f"shared MUSDB data not found at {MUSDB_TRAIN}")
    sep = model.load("musdb4")
    track = read_musdb(path, sep.sample_rate_hz, channels=1)
    estimates = sep.separate(track.mixture)[:, 0]  # the streaming code path, aligned
    refs = np.stack([track.stems[s][0] for s in sep.stems])
    scores = windowed_si_sdri(estimates, refs, track.mixture[0], sep.sample_rate_hz)
    assert len(scores) >= 1
    assert np.nanmean(scores) > 0.0, scores


def test_shipped_musdb4_scores_what_its_model_card_says():
    """`stemstream eval` on the 8 held-out songs reproduces docs/models/musdb4-valid.json."""
    import json

    from model.training.evaluate import evaluate

    if not MUSDB_TRAIN.is_dir():
        pytest.skip(f"shared MUSDB data not found at {MUSDB_TRAIN}")
    card = json.loads((REPO_ROOT / "docs" / "models" / "musdb4-valid.json").read_text())
    card = card[0] if isinstance(card, list) else card
    result = evaluate("musdb4", MUSDB_TRAIN, "musdb", names=card["track_names"], sdr=False)
    for stem, score in card["stems"].items():
        assert result.stems[stem].si_sdri_db == pytest.approx(score["si_sdri_db"], abs=0.02), stem
    assert result.mean_si_sdri_db == pytest.approx(card["mean_si_sdri_db"], abs=0.02)


@pytest.fixture(scope="module")
def fresh_songs(tmp_path_factory) -> list[Path]:
    """Two 12 s songs rendered here (seed 1000) with FluidR3: no model saw them."""
    if not DEFAULT_SOUNDFONT.is_file():  # scripts/install.sh installs it (CI does)
        pytest.skip("fluid-soundfont-gm is not installed (scripts/install.sh)")
    out = tmp_path_factory.mktemp("fresh")
    render_dataset(out, 2, 12.0, DEFAULT_SOUNDFONT, seed=1000)
    return list_slakh(out)


def fresh_scores(name: str, songs: list[Path], references: Callable[[Track], np.ndarray]) -> np.ndarray:
    """Windowed SI-SDRi ``[W, S]`` of shipped model ``name`` over ``songs`` (mono), each song's
    references ``[S, T]`` given by ``references(track)`` in the model's stem order."""
    sep = model.load(name)
    rows = []
    for path in songs:
        track = read_slakh(path, sep.sample_rate_hz, channels=1)
        rows.append(windowed_si_sdri(sep.separate(track.mixture)[:, 0], references(track), track.mixture[0],
                                     sep.sample_rate_hz))
    return np.concatenate(rows)


def test_shipped_musdb4_beats_the_mixture_on_fresh_rendered_songs(fresh_songs):
    """Needs no shared data. Its drums and bass are scored against the songs', its ``other``
    against everything else; vocals are silent (inactive, so unscored). The mean over the
    scored stems must beat the mixture."""
    def references(track: Track) -> np.ndarray:  # vocals, drums, bass, other
        mix, drums, bass = track.mixture[0], track.stems["drums"][0], track.stems["bass"][0]
        return np.stack([np.zeros_like(mix), drums, bass, mix - drums - bass])
    scores = fresh_scores("musdb4", fresh_songs, references)
    assert len(scores) >= 8 and np.isnan(scores[:, 0]).all()
    assert np.nanmean(np.nanmean(scores[:, 1:], axis=0)) > 0.0, scores


def test_shipped_slakh4_beats_the_mixture_on_fresh_rendered_songs(fresh_songs):
    """Every stem of the rendered songs' own layout, scored with the paper's protocol."""
    stems = ("bass", "drums", "guitar", "piano")
    assert model.load("slakh4").stems == stems
    scores = fresh_scores("slakh4", fresh_songs, lambda track: np.stack(
        [track.stems.get(s, np.zeros_like(track.mixture))[0] for s in stems]))  # [W, 4]; silent stem: NaN
    scored = ~np.isnan(scores).all(axis=0)  # these two songs have no piano
    assert len(scores) >= 8 and scored.sum() >= 3
    per_stem = np.array([np.nanmean(scores[:, j]) for j in np.flatnonzero(scored)])
    assert per_stem.mean() > 0.0, per_stem


SLAKH4_TEST_SEED, SLAKH4_TEST_SECONDS = 2, 30.0  # the card's test split: stemstream render --split test --seed 2


def test_shipped_slakh4_scores_what_its_model_card_says(tmp_path):
    """The first 4 of the 20 songs of slakh4's test split (docs/models/slakh4.md), rendered here as
    the card's command renders them, score what docs/models/slakh4-test-first4.json says (within
    0.02 dB). The whole split would take about 2 CPU-minutes to render and score; these 4, about 20 s."""
    import json

    from model.training.evaluate import evaluate

    if not DEFAULT_SOUNDFONT.is_file():  # scripts/install.sh installs it (CI does)
        pytest.skip("fluid-soundfont-gm is not installed (scripts/install.sh)")
    card = json.loads((REPO_ROOT / "docs" / "models" / "slakh4-test-first4.json").read_text())
    render_dataset(tmp_path, card["tracks"], SLAKH4_TEST_SECONDS, DEFAULT_SOUNDFONT, seed=SLAKH4_TEST_SEED)
    result = evaluate("slakh4", tmp_path, "slakh", sdr=False)
    assert result.track_names == card["track_names"]
    for stem, score in card["stems"].items():
        assert result.stems[stem].windows == score["windows"], stem
        assert result.stems[stem].si_sdri_db == pytest.approx(score["si_sdri_db"], abs=0.02), stem
    assert result.mean_si_sdri_db == pytest.approx(card["mean_si_sdri_db"], abs=0.02)
