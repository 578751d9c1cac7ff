"""Fixtures for plugin_host tests: a small random-weight separator, saved and loaded."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import model
from plugin_host import StemSeparator
from tests.helpers import small_config


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


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """These tests run many small model calls: one thread avoids oversubscribing a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
