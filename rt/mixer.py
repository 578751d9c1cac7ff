"""``StemMixer``: per-stem gain / mute / solo / selection and dry/wet, with click-free ramps.

Control without locks on the audio side: setters may be called from any thread (API, MIDI,
UI); they serialise among themselves with a lock, write the new target coefficients into a
preallocated array and then bump a version counter. The audio path (:meth:`StemMixer.mix_into`,
one numba kernel over preallocated state) only reads them: when it sees a new version it ramps
every coefficient linearly from where it is to the new target over ``ramp_samples`` (at least
5 ms). It never takes the lock and allocates nothing. The kernel keeps the GIL, and so does a
setter's array write, so the kernel never sees half-written targets; even if it did, the
version bumped after the write makes the next block ramp to the complete targets.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

MIN_RAMP_MS = 5.0


@numba.njit(cache=True)
def _mix_kernel(stems, dry, n, targets, version, start, goal, current, ramp, ramp_samples,
                output_index, stem_outputs, out, frame_major):
    """Mix ``n`` samples of ``stems [S, C, >=n]`` and ``dry [C, >=n]`` into ``out`` (``[C_out, >=n]``,
    or ``[>=n, C_out]`` when ``frame_major``) with coefficients ramped per sample.

    ``targets [S + 1]`` and ``version [1]`` are the published controls; ``start``/``goal``
    ``[S + 1]`` (float64) the running ramp's ends, ``current [S + 1]`` the coefficients at the
    last sample, ``ramp [2]`` (int64) the ramp's position and the version it ramps to.
    """
    n_coeff = targets.shape[0]
    n_stems, channels = stems.shape[0], stems.shape[1]
    if version[0] != ramp[1]:  # a new target: ramp to it from where we are
        ramp[1] = version[0]
        for i in range(n_coeff):
            start[i] = current[i]
            goal[i] = targets[i]
        ramp[0] = 0
    for k in range(n):
        if ramp[0] < ramp_samples:
            ramp[0] += 1
            if ramp[0] == ramp_samples:
                for i in range(n_coeff):
                    current[i] = goal[i]  # land exactly on the target
            else:
                frac = ramp[0] / ramp_samples
                for i in range(n_coeff):
                    current[i] = start[i] + (goal[i] - start[i]) * frac
        for c in range(channels):
            if stem_outputs:
                for o in range(output_index.shape[0]):
                    s = output_index[o]
                    v = current[s] * stems[s, c, k]
                    if frame_major:
                        out[k, o * channels + c] = v
                    else:
                        out[o * channels + c, k] = v
            else:
                acc = current[n_stems] * dry[c, k]
                for s in range(n_stems):
                    acc += current[s] * stems[s, c, k]
                if frame_major:
                    out[k, c] = acc
                else:
                    out[c, k] = acc


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
        self.sample_rate_hz = int(sample_rate_hz)
        self.meters = None  # an rt.meters.StemMeters fed by mix_into when attached (set before a stream starts)
        self.stem_outputs = stem_outputs
        self.output_stems = tuple(self._check(s) for s in (output_stems or self.stems))
        self._output_index = np.array([self.stems.index(s) for s in self.output_stems], np.int64)
        self.output_channels = self.channels * (len(self.output_stems) if stem_outputs else 1)
        self._lock = threading.Lock()
        self._gains_db = {s: 0.0 for s in self.stems}
        self._selected = set(self.stems)
        self._muted: set[str] = set()
        self._soloed: set[str] = set()
        self._wet = 1.0
        # published controls [S + 1] (per-stem gains, then the dry gain) and their version
        self._targets = self._coefficients()
        self._version = np.zeros(1, np.int64)
        # audio-side ramp state, owned by whoever calls mix_into
        self._start = self._targets.astype(np.float64)
        self._goal = self._start.copy()
        self._current = self._targets.copy()
        self._ramp = np.array([self.ramp_samples, 0], np.int64)  # position, version ramped to

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
            self._targets[:] = self._coefficients()  # the values first, then the version that announces them
            self._version[0] += 1

    def _coefficients(self) -> np.ndarray:
        gains = np.zeros(len(self.stems) + 1, np.float32)
        for i, s in enumerate(self.stems):
            audible = s in self._selected and s not in self._muted and (not self._soloed or s in self._soloed)
            gains[i] = 10.0 ** (self._gains_db[s] / 20.0) if audible else 0.0
        wet = 1.0 if self.stem_outputs else self._wet
        gains[:-1] *= wet
        gains[-1] = 0.0 if self.stem_outputs else 1.0 - wet
        return gains

    # ------------------------------------------------------------------ audio side
    def settle(self) -> None:
        """Jump every coefficient to its target, no ramp (before a stream starts)."""
        with self._lock:
            self._current[:] = self._targets
            self._start[:] = self._targets
            self._goal[:] = self._targets
            self._ramp[:] = (self.ramp_samples, self._version[0])

    def mix_into(self, stems: np.ndarray, dry: np.ndarray, n: int, out: np.ndarray, frame_major: bool = False) -> None:
        """Mix the first ``n`` samples of ``stems [S, C, >=n]`` and ``dry [C, >=n]`` into ``out``
        (``[C_out, >=n]``, or ``[>=n, C_out]`` with ``frame_major``: sounddevice's output block).

        Allocation-free and lock-free (one numba kernel over preallocated state): for the audio
        callback. One thread at a time calls ``mix_into``/``mix``.
        """
        _mix_kernel(stems, dry, n, self._targets, self._version, self._start, self._goal, self._current,
                    self._ramp, self.ramp_samples, self._output_index, self.stem_outputs, out, frame_major)
        meters = self.meters
        if meters is not None:  # level meters for a UI (rt/meters.py): one more allocation-free kernel
            meters.update(stems, dry, n, self._current, out, frame_major)

    def mix(self, stems: np.ndarray, dry: np.ndarray) -> np.ndarray:
        """Stems ``[S, C, n]`` and dry ``[C, n]`` -> a new ``[C_out, n]`` (:meth:`mix_into` into a new array)."""
        n = stems.shape[2]
        out = np.empty((self.output_channels, n), np.float32)
        self.mix_into(np.ascontiguousarray(stems, np.float32), np.ascontiguousarray(dry, np.float32), n, out)
        return out


def warmup() -> None:
    """Compile the mixing kernel (both layouts, both modes) before a stream starts."""
    for stem_outputs in (False, True):
        mixer = StemMixer(("a", "b"), 2, 22050, stem_outputs=stem_outputs)
        stems, dry = np.zeros((2, 2, 4), np.float32), np.zeros((2, 4), np.float32)
        mixer.mix_into(stems, dry, 4, np.zeros((mixer.output_channels, 4), np.float32))
        mixer.mix_into(stems, dry, 4, np.zeros((4, mixer.output_channels), np.float32), frame_major=True)
