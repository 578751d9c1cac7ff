"""The multitrack type every reader returns."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Track:
    """One song: ``mixture [C, T]`` and ``stems`` name -> ``[C, T]`` float32 at ``sample_rate_hz``."""

    name: str
    mixture: np.ndarray
    stems: dict[str, np.ndarray]
    sample_rate_hz: int

    @property
    def num_samples(self) -> int:
        return self.mixture.shape[-1]

    def to_mono(self) -> "Track":
        """The same track with every signal averaged over its channels (``[1, T]``)."""
        return Track(self.name, self.mixture.mean(0, keepdims=True),
                     {k: v.mean(0, keepdims=True) for k, v in self.stems.items()}, self.sample_rate_hz)
