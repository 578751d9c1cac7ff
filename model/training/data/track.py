"""The multitrack type every reader returns."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

CATCH_ALL_STEM = "other"  # a stem set's stem for every instrument its other stems leave out (as in MUSDB18)


@dataclass
class Track:
    """One song: ``mixture [C, T]`` and ``stems`` name -> ``[C, T]`` at ``sample_rate_hz``, float32
    (float16 where training holds many songs in memory: :meth:`astype`)."""

    name: str
    mixture: np.ndarray
    stems: dict[str, np.ndarray]
    sample_rate_hz: int

    @property
    def num_samples(self) -> int:
        return self.mixture.shape[-1]

    def astype(self, dtype: type) -> "Track":
        """The same track with every signal as ``dtype`` (itself when they already are)."""
        if self.mixture.dtype == dtype and all(v.dtype == dtype for v in self.stems.values()):
            return self
        return Track(self.name, self.mixture.astype(dtype), {k: v.astype(dtype) for k, v in self.stems.items()},
                     self.sample_rate_hz)

    def to_mono(self) -> "Track":
        """The same track with every signal averaged over its channels (``[1, T]``)."""
        return Track(self.name, self.mixture.mean(0, keepdims=True),
                     {k: v.mean(0, keepdims=True) for k, v in self.stems.items()}, self.sample_rate_hz)

    def onto_stems(self, stems: tuple[str, ...]) -> "Track":
        """The same song seen through another stem set ``stems``: stems of both sets are kept; when
        ``stems`` holds the catch-all ``other`` and this track does not, ``other`` becomes everything
        the kept stems leave out (``mixture - sum(kept)``), so the stems make up the mixture; the
        remaining stems of ``stems`` stay absent (silent to the sampler). E.g. a rendered Slakh song
        (bass, drums, guitar, piano, strings, ...) for musdb4: bass, drums, and ``other`` holding
        guitar, piano and the rest; no vocals."""
        kept = {k: v for k, v in self.stems.items() if k in stems}
        if CATCH_ALL_STEM in stems and CATCH_ALL_STEM not in kept:
            kept[CATCH_ALL_STEM] = residual(self.mixture, kept.values())
        return Track(self.name, self.mixture, kept, self.sample_rate_hz)


def residual(mixture: np.ndarray, parts: Iterable[np.ndarray]) -> np.ndarray:
    """``mixture - sum(parts)`` ``[C, T]``, summed in float32 and returned in ``mixture``'s dtype."""
    rest = mixture.astype(np.float32)
    for part in parts:
        rest -= part
    return rest.astype(mixture.dtype, copy=False)
