"""Shared fixtures: small random-weight separators (fast on two CPU cores)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model
from tests.helpers import small_config


@pytest.fixture
def small_model() -> model.RQVAESeparator:
    torch.manual_seed(0)
    return model.RQVAESeparator(small_config()).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
