"""The shipped default model loads and beats the mixture on a song it was not trained on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model
from model.data import read_musdb
from model.metrics import windowed_si_sdri

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

