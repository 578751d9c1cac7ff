"""Level meters written by the audio path, read by a UI: preallocated arrays and one numba kernel.

``StemMeters.update`` runs where the mixer runs (``StemMixer.mix_into`` calls it on every
block it mixes, when meters are attached): one ``@numba.njit`` kernel over the block and
preallocated float64 state. It allocates nothing, takes no lock and creates no Python object
per block. A UI reads the state whenever it likes (:meth:`StemMeters.read_db`, at most 30 Hz)
and never writes it, so nothing flows from the UI to the audio side through here.

Rows: one per stem (the stem as it reaches the output, i.e. times its mixer coefficient:
gain, mute, solo, selection and dry/wet), then the input (the dry signal the mixer gets), then
the output (the mixed block). Per row:

- ``peak``: the block's peak ``max |x|`` over channels and samples, or the previous peak
  falling at ``PEAK_FALL_DB_PER_S``, whichever is higher (a peak-programme meter's fall-back);
- ``mean_square``: an exponential moving average of ``x**2`` over channels and samples with
  time constant ``RMS_TIME_CONSTANT_S`` (its square root is the RMS level).

A stem's coefficient is the one at the end of the block (gain ramps last 10 ms; a meter
shows the new gain a block later at most).
"""
from __future__ import annotations

import math

import numba
import numpy as np

PEAK_FALL_DB_PER_S = 20.0
RMS_TIME_CONSTANT_S = 0.3
FLOOR_DB = -120.0  # what silence reads as


@numba.njit(cache=True)
def _meter_kernel(stems, dry, n, coeff, out, frame_major, rate_hz, peak, mean_square, blocks):
    """One block: ``stems [S, C, >=n]``, ``dry [C, >=n]``, ``coeff [>=S]``, ``out [C_out, >=n]``
    (``[>=n, C_out]`` when ``frame_major``) -> ``peak``/``mean_square [S + 2]`` updated in place."""
    if n <= 0:
        return
    n_stems, channels = stems.shape[0], stems.shape[1]
    fall = 10.0 ** (-PEAK_FALL_DB_PER_S * n / (20.0 * rate_hz))
    keep = math.exp(-n / (RMS_TIME_CONSTANT_S * rate_hz))
    for s in range(n_stems + 2):
        block_peak = 0.0
        block_energy = 0.0
        count = 0
        if s < n_stems:
            g = abs(coeff[s])
            for c in range(channels):
                for k in range(n):
                    v = abs(stems[s, c, k]) * g
                    block_peak = max(block_peak, v)
                    block_energy += v * v
            count = channels * n
        elif s == n_stems:
            for c in range(dry.shape[0]):
                for k in range(n):
                    v = abs(dry[c, k])
                    block_peak = max(block_peak, v)
                    block_energy += v * v
            count = dry.shape[0] * n
        else:
            n_out = out.shape[1] if frame_major else out.shape[0]
            for c in range(n_out):
                for k in range(n):
                    v = abs(out[k, c]) if frame_major else abs(out[c, k])
                    block_peak = max(block_peak, v)
                    block_energy += v * v
            count = n_out * n
        peak[s] = max(block_peak, peak[s] * fall)
        mean_square[s] = keep * mean_square[s] + (1.0 - keep) * block_energy / max(count, 1)
    blocks[0] += 1


class StemMeters:
    """Preallocated meter state for ``n_stems`` stems, the input and the output.

    Args:
        n_stems: the mixer's stems ``S``.
        sample_rate_hz: the rate of the blocks metered (the mixer's rate), for the ballistics.

    Attributes (written by the audio path only): ``peak [S + 2]`` and ``mean_square [S + 2]``
    (linear, float64), ``blocks [1]`` (blocks metered so far). Rows ``0..S-1`` are the stems,
    ``INPUT = S`` the input, ``OUTPUT = S + 1`` the output.
    """

    def __init__(self, n_stems: int, sample_rate_hz: int) -> None:
        if n_stems < 1 or sample_rate_hz <= 0:
            raise ValueError(f"need n_stems >= 1 and sample_rate_hz > 0, got {n_stems}, {sample_rate_hz}")
        self.n_stems = int(n_stems)
        self.sample_rate_hz = float(sample_rate_hz)
        self.input_row, self.output_row = self.n_stems, self.n_stems + 1
        self.peak = np.zeros(self.n_stems + 2, np.float64)
        self.mean_square = np.zeros(self.n_stems + 2, np.float64)
        self.blocks = np.zeros(1, np.int64)

    def update(self, stems: np.ndarray, dry: np.ndarray, n: int, coeff: np.ndarray, out: np.ndarray,
               frame_major: bool = False) -> None:
        """Meter the first ``n`` samples of a mixed block (audio path; allocation- and lock-free).

        ``stems [S, C, >=n]`` and ``dry [C, >=n]`` (float32) are the mixer's inputs, ``coeff
        [S + 1]`` its coefficients (per-stem gains, then the dry gain), ``out`` its output
        (``[C_out, >=n]``, or ``[>=n, C_out]`` with ``frame_major``).
        """
        _meter_kernel(stems, dry, n, coeff, out, frame_major, self.sample_rate_hz, self.peak, self.mean_square,
                      self.blocks)

    def read_db(self) -> tuple[np.ndarray, np.ndarray]:
        """``(peak_db [S + 2], rms_db [S + 2])``: a copy in dBFS, ``FLOOR_DB`` for silence (UI side)."""
        peak, mean_square = self.peak.copy(), self.mean_square.copy()
        return to_db(peak), to_db(np.sqrt(mean_square))

    def warmup(self) -> None:
        """Compile the kernel for both output layouts (before a stream starts); the state stays zero."""
        stems, dry = np.zeros((self.n_stems, 1, 4), np.float32), np.zeros((1, 4), np.float32)
        coeff = np.zeros(self.n_stems + 1, np.float32)
        scratch = StemMeters(self.n_stems, int(self.sample_rate_hz))
        scratch.update(stems, dry, 4, coeff, np.zeros((1, 4), np.float32))
        scratch.update(stems, dry, 4, coeff, np.zeros((4, 1), np.float32), frame_major=True)


def to_db(linear: np.ndarray) -> np.ndarray:
    """``20 log10(x)``, ``FLOOR_DB`` where ``x`` is (below) the floor."""
    with np.errstate(divide="ignore"):
        return np.maximum(20.0 * np.log10(np.maximum(linear, 0.0)), FLOOR_DB)
