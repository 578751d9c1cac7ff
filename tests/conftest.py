"""Shared fixtures: small random-weight separators (fast on two CPU cores)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model


def small_config(**overrides) -> model.SeparatorConfig:
    """A tiny causal config (frame 32) so tests run fast; same layer types as the default."""
    base = dict(channels=(8, 16, 16), strides=(4, 2, 4), n_q=4, codebook_size=32, codebook_dim=8,
                stems=model.config.SLAKH_STEMS)
    base.update(overrides)
    return model.SeparatorConfig(**base)


@pytest.fixture
def small_model() -> model.RQVAESeparator:
    torch.manual_seed(0)
    return model.RQVAESeparator(small_config()).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
