"""Shared test helpers (not fixtures): the repository's paths and a tiny separator configuration."""
from __future__ import annotations

from pathlib import Path

import model

REPO_ROOT = Path(__file__).resolve().parents[1]
MUSDB_TRAIN = REPO_ROOT.parent / "shared" / "data" / "musdb18-7" / "train"  # ../shared, read in place


def small_config(**overrides) -> model.SeparatorConfig:
    """A tiny causal config (frame 32) so tests run fast; same layer types as the default."""
    base = dict(channels=(8, 16, 16), strides=(4, 2, 4), n_q=4, codebook_size=32, codebook_dim=8,
                stems=model.config.SLAKH_STEMS)
    base.update(overrides)
    return model.SeparatorConfig(**base)
