"""The shipped default model loads and beats the mixture on a song it was not trained on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model
from model.data import list_slakh, read_musdb, read_slakh
from model.metrics import windowed_si_sdri
from model.render.dataset import DEFAULT_SOUNDFONT, render_dataset

MUSDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "musdb18-7" / "train"
HELD_OUT = "Actions - One Minute Smile"  # a validation song of the shipped musdb4 (docs/models/musdb4.md)


def test_default_model_is_shipped_and_loads():
    assert model.DEFAULT_MODEL in model.shipped_models()
    sep = model.load(model.DEFAULT_MODEL)
    assert sep.stems == ("vocals", "drums", "bass", "other")
    assert sep.sample_rate_hz == 22050


def test_shipped_musdb4_beats_the_mixture_on_a_held_out_song():
    path = MUSDB / f"{HELD_OUT}.stem.mp4"
    if not path.is_file():
        pytest.skip(f"shared MUSDB data not found at {MUSDB}")
    sep = model.load("musdb4")
    track = read_musdb(path, sep.sample_rate_hz, channels=1)
    estimates = sep.separate(track.mixture)[:, 0]  # the streaming code path, aligned
    refs = np.stack([track.stems[s][0] for s in sep.stems])
    scores = windowed_si_sdri(estimates, refs, track.mixture[0], sep.sample_rate_hz)
    assert len(scores) >= 1
    assert np.nanmean(scores) > 0.0, scores



@pytest.mark.skipif(not DEFAULT_SOUNDFONT.is_file(), reason="fluid-soundfont-gm is not installed (scripts/install.sh)")
def test_shipped_musdb4_beats_the_mixture_on_fresh_rendered_songs(tmp_path):
    """Needs no shared data: two 12 s songs rendered here (seed 1000) with FluidR3. Its drums and
    bass are scored against theirs, its ``other`` against everything else; vocals are silent
    (inactive, so unscored). The mean over the scored stems must beat the mixture."""
    render_dataset(tmp_path, 2, 12.0, DEFAULT_SOUNDFONT, seed=1000)
    sep = model.load("musdb4")
    rows = []
    for path in list_slakh(tmp_path):
        track = read_slakh(path, sep.sample_rate_hz, channels=1)
        mix, drums, bass = track.mixture[0], track.stems["drums"][0], track.stems["bass"][0]
        refs = np.stack([np.zeros_like(mix), drums, bass, mix - drums - bass])  # vocals, drums, bass, other
        rows.append(windowed_si_sdri(sep.separate(track.mixture)[:, 0], refs, mix, sep.sample_rate_hz))
    scores = np.concatenate(rows)
    assert len(scores) >= 8 and np.isnan(scores[:, 0]).all()
    assert np.nanmean(np.nanmean(scores[:, 1:], axis=0)) > 0.0, scores
