"""Fixtures for plugin_host tests: a small random-weight separator, saved and loaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import model
from plugin_host import StemSeparator
from tests.conftest import small_config


@pytest.fixture(scope="session")
def small_net() -> model.RQVAESeparator:
    torch.manual_seed(0)
    return model.RQVAESeparator(small_config()).eval()


@pytest.fixture(scope="session")
def small_model_dir(small_net, tmp_path_factory) -> Path:
    return model.save_separator(small_net, tmp_path_factory.mktemp("models") / "small")


@pytest.fixture
def separator(small_model_dir) -> StemSeparator:
    """A fresh processor over the saved small model (all stems, 0 dB)."""
    return StemSeparator(str(small_model_dir))


def noise(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    """``[C, T]`` float32 noise at -10 dBFS."""
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """These tests run many small model calls: one thread avoids oversubscribing a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
