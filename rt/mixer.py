"""``StemMixer``: per-stem gain / mute / solo / selection and dry/wet, with click-free ramps.

Setters may be called from any thread (API, MIDI, UI); they update the control state under a
lock and publish new target coefficients by swapping one reference. The worker thread calls
``mix`` and never takes the lock: every coefficient moves from its current value to its target
along a linear ramp of ``ramp_samples`` (at least 5 ms).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_RAMP_MS = 5.0


@dataclass(frozen=True)
class MixerState:
    """A snapshot of the controls: what a status line or a MIDI controller shows."""

    gains_db: dict[str, float]
    selected: tuple[str, ...]
    muted: tuple[str, ...]
    soloed: tuple[str, ...]
    wet: float


class StemMixer:
    """Mixes stems ``[S, C, n]`` (and the dry input ``[C, n]``) into ``[C_out, n]``.

    Normal mode: ``out = (1 - wet) * dry + wet * sum_s g_s * stem_s`` (``C_out = C``).
    ``stem_outputs=True``: each of ``output_stems`` goes to its own ``C`` channels,
    ``out[i*C:(i+1)*C] = g_i * stem_i`` (``C_out = len(output_stems) * C``; dry/wet unused).
    A stem is audible when selected, not muted, and either soloed or no stem is soloed;
    its gain ``g`` is then ``10 ** (gain_db / 20)``, else 0.
    """

    def __init__(self, stems: Sequence[str], channels: int, sample_rate_hz: int, ramp_ms: float = 10.0,
                 stem_outputs: bool = False, output_stems: Sequence[str] | None = None) -> None:
        if ramp_ms < MIN_RAMP_MS:
            raise ValueError(f"ramp_ms must be at least {MIN_RAMP_MS} ms to stay click-free, got {ramp_ms}")
        self.stems = tuple(stems)
        self.channels = int(channels)
        self.ramp_samples = max(1, math.ceil(ramp_ms * sample_rate_hz / 1000))
        self.stem_outputs = stem_outputs
        self.output_stems = tuple(self._check(s) for s in (output_stems or self.stems))
        self._output_index = np.array([self.stems.index(s) for s in self.output_stems])
        self.output_channels = self.channels * (len(self.output_stems) if stem_outputs else 1)
        self._lock = threading.Lock()
        self._gains_db = {s: 0.0 for s in self.stems}
        self._selected = set(self.stems)
        self._muted: set[str] = set()
        self._soloed: set[str] = set()
        self._wet = 1.0
        self._target = self._coefficients()  # [S + 1]: per-stem gains, then the dry gain
        self._current = self._target.copy()  # worker-owned from here on
        self._step = np.zeros_like(self._current)
        self._ramp_left = 0
        self._ramp_target = self._target

    # ------------------------------------------------------------------ control (any thread)
    def select(self, stems: Sequence[str]) -> None:
        """Hear only ``stems`` (names of the model's stems)."""
        chosen = {self._check(s) for s in stems}
        self._update(lambda: setattr(self, "_selected", chosen))

    def set_gain_db(self, stem: str, gain_db: float) -> None:
        """Set one stem's gain in dB (``-inf`` silences it)."""
        self._check(stem)
        self._update(lambda: self._gains_db.__setitem__(stem, float(gain_db)))

    def mute(self, stem: str, muted: bool = True) -> None:
        """Mute (or with ``muted=False`` unmute) one stem."""
        self._check(stem)
        self._update(lambda: (self._muted.add if muted else self._muted.discard)(stem))

    def toggle_mute(self, stem: str) -> None:
        """Flip one stem's mute."""
        self._check(stem)
        self._update(lambda: (self._muted.discard if stem in self._muted else self._muted.add)(stem))

    def solo(self, stem: str, soloed: bool = True) -> None:
        """Solo (or with ``soloed=False`` unsolo) one stem; with any solo on, only soloed stems play."""
        self._check(stem)
        self._update(lambda: (self._soloed.add if soloed else self._soloed.discard)(stem))

    def set_wet(self, wet: float) -> None:
        """Dry/wet balance: 0 = the input alone, 1 = the stems alone."""
        if not 0.0 <= wet <= 1.0:
            raise ValueError(f"wet must be within [0, 1], got {wet}")
        self._update(lambda: setattr(self, "_wet", float(wet)))

    def state(self) -> MixerState:
        with self._lock:
            return MixerState(dict(self._gains_db), tuple(s for s in self.stems if s in self._selected),
                              tuple(sorted(self._muted)), tuple(sorted(self._soloed)), self._wet)

    def _check(self, stem: str) -> str:
        if stem not in self.stems:
            raise ValueError(f"unknown stem {stem!r}; this model's stems are: {', '.join(self.stems)}")
        return stem

    def _update(self, change) -> None:
        with self._lock:
            change()
            self._target = self._coefficients()  # one reference swap: the worker sees old or new

    def _coefficients(self) -> np.ndarray:
        gains = np.zeros(len(self.stems) + 1, np.float32)
        for i, s in enumerate(self.stems):
            audible = s in self._selected and s not in self._muted and (not self._soloed or s in self._soloed)
            gains[i] = 10.0 ** (self._gains_db[s] / 20.0) if audible else 0.0
        wet = 1.0 if self.stem_outputs else self._wet
        gains[:-1] *= wet
        gains[-1] = 0.0 if self.stem_outputs else 1.0 - wet
        return gains

    # ------------------------------------------------------------------ worker thread
    def settle(self) -> None:
        """Jump every coefficient to its target, no ramp (before a stream starts)."""
        self._ramp_target = self._target
        self._current = self._target.copy()
        self._ramp_left = 0

    def mix(self, stems: np.ndarray, dry: np.ndarray) -> np.ndarray:
        """Stems ``[S, C, n]`` and dry ``[C, n]`` -> ``[C_out, n]``, coefficients ramped per sample."""
        n = stems.shape[2]
        coeff = self._envelope(n)  # [S + 1, n]
        if self.stem_outputs:
            picked = stems[self._output_index] * coeff[self._output_index, None, :]
            return picked.reshape(self.output_channels, n)
        return np.einsum("sn,scn->cn", coeff[:-1], stems) + coeff[-1] * dry

    def _envelope(self, n: int) -> np.ndarray:
        target = self._target
        if target is not self._ramp_target:  # a new target: ramp to it from where we are
            self._ramp_target = target
            self._step = (target - self._current) / self.ramp_samples
            self._ramp_left = self.ramp_samples
        env = np.empty((self._current.shape[0], n), np.float32)
        k = min(self._ramp_left, n)
        env[:, :k] = self._current[:, None] + self._step[:, None] * np.arange(1, k + 1, dtype=np.float32)
        self._ramp_left -= k
        if self._ramp_left == 0:
            self._current = target.copy()  # land exactly on the target
        elif k:
            self._current = env[:, k - 1].copy()
        env[:, k:] = self._current[:, None]
        return env
