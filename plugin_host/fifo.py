"""A first-in first-out queue of ``[..., C, T]`` audio, used to hand out exactly as many samples
as came in when a stage produces them in other amounts (resamplers, native plugins)."""
from __future__ import annotations

import numpy as np


class SampleFifo:
    """Samples along the last axis of ``[*lead, T]`` float32 arrays, in order.

    ``push(x)`` appends; ``pop(n)`` takes the oldest ``n`` (``ValueError`` if fewer are held:
    callers size their prefill so that cannot happen, or check :attr:`available` first).
    """

    def __init__(self, lead_shape: tuple[int, ...], prefill_samples: int = 0) -> None:
        self.lead_shape = tuple(lead_shape)
        self._data = np.zeros((*self.lead_shape, int(prefill_samples)), np.float32)

    @property
    def available(self) -> int:
        return self._data.shape[-1]

    def push(self, x: np.ndarray) -> None:
        if x.shape[:-1] != self.lead_shape:
            raise ValueError(f"expected [..., T] with leading shape {self.lead_shape}, got {x.shape}")
        if x.shape[-1]:
            self._data = np.concatenate([self._data, x.astype(np.float32, copy=False)], axis=-1)

    def pop(self, n: int) -> np.ndarray:
        if n > self.available:
            raise ValueError(f"asked for {n} samples but only {self.available} are queued")
        out, self._data = self._data[..., :n], self._data[..., n:]
        return np.ascontiguousarray(out)
