"""Shared plugin_host test helpers (not fixtures): test signals and errors."""
from __future__ import annotations

import numpy as np


def noise(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    """``[C, T]`` float32 noise at -10 dBFS."""
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
