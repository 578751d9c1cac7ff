"""Evaluating a separator on multitrack data with the paper's protocol (and museval's SDR).

A causal model runs over each whole track through :meth:`StreamingSeparator.separate`:
the streaming layers' code from a reset state, fed in chunks of whole frames, which gives the
same samples as feeding ``process`` block by block and shifting by ``latency_samples`` (the
runtime's tests check that equality) while avoiding per-block Python overhead. Each channel
is separated as a mono signal (channels are folded into the model's batch). A non-causal model
(``causal=False``: the paper's bidirectional arrangement, kept for comparison) cannot stream;
it runs offline on the whole track in one call.

Scores, per stem the model and the data both have:
- ``si_sdri_db``: the paper's protocol, :func:`model.training.metrics.windowed_si_sdri` (4 s windows, 2 s
  hop, windows with fewer than 2 active stems skipped) on every channel of every track as a mono
  signal at 22.05 kHz (estimates, references and mixture resampled to it when the model runs at
  another rate), ``nanmean`` over all windows; ``windows`` counts the windows where the stem was
  active. Comparable across models and with the paper whatever rate a model runs at.
- ``si_sdri_fullband_db``: the same at the model's own rate (its whole band); equal to
  ``si_sdri_db`` for a 22.05 kHz model.
- ``sdr_db``: BSSEval v4 SDR from ``museval.evaluate`` on the stereo (or mono) track with 1 s
  windows and hop (the SiSEC 2018 / MUSDB18 setting): median over a track's windows, then
  median over tracks. Optional (slow): ``None`` when skipped.
``mean_si_sdri_db`` is the mean over the scored stems. A stem the model and the data share but
that is silent in every kept window of every track (e.g. no guitar in the songs scored) has no
score: it is listed in ``absent_stems``, never scored as NaN (and ``mean_si_sdri_db`` is ``None``
when no stem was scored). Side by side, :func:`format_table` averages over the stems every
result scored and names them. Reference stems the model lacks stay in the mixture.
``name_or_path="mixture"`` scores the mixture as every estimate (0 dB SI-SDRi by construction).
``oracle="psm"`` or ``"irm"`` scores a mask model's ideal masks instead of its network's
(:mod:`model.training.oracle`: the ceiling of its basis and synthesis), run offline.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_separator
from ..config import SeparatorConfig
from .data.readers import list_tracks, read_track
from .data.track import Track
from .metrics import PROTOCOL_RATE_HZ, to_protocol_rate, windowed_si_sdri
from .oracle import ORACLE_MASKS, oracle_stems
from ..runtime import StreamingSeparator
from ..separator import RQVAESeparator

MIXTURE_BASELINE = "mixture"
MUSEVAL_WINDOW_S = 1.0


@dataclass(frozen=True)
class StemScore:
    """One stem's scores: mean windowed SI-SDRi (dB; the paper's protocol at 22.05 kHz), median
    museval SDR (dB), active windows, and the SI-SDRi at the model's own rate (its whole band)."""

    si_sdri_db: float
    sdr_db: float | None
    windows: int
    si_sdri_fullband_db: float


@dataclass(frozen=True)
class EvalResult:
    """A model's scores on a data set; ``to_json()`` is the ``stemstream eval --json`` object."""

    model: str
    tracks: int
    stems: dict[str, StemScore]  # the stems scored (active in at least one kept window)
    mean_si_sdri_db: float | None  # over ``stems``; None when none was scored
    data: str = ""
    format: str = ""
    sample_rate_hz: int = 0
    track_names: list[str] = field(default_factory=list)
    audio_s: float = 0.0  # seconds of audio scored (per channel)
    wall_s: float = 0.0   # time taken: reading, separating and scoring
    absent_stems: list[str] = field(default_factory=list)  # shared with the data but silent throughout
    n_q: int | None = None  # quantizers the model used (None: the mixture baseline)
    oracle: str | None = None  # the ideal masks scored instead of the network's (None: the network)

    @property
    def label(self) -> str:
        """The model's name, and the oracle masks scored in its place if any."""
        return self.model if self.oracle is None else f"{self.model} [oracle {self.oracle}]"

    def to_json(self) -> dict:
        out = asdict(self)
        out["stems"] = {k: _finite_or_none(asdict(v)) for k, v in self.stems.items()}
        out["mean_si_sdri_db"] = _finite(self.mean_si_sdri_db)
        return out


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def _finite_or_none(score: dict) -> dict:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in score.items()}


class _Estimator:
    """Stem estimates ``[S, C, T]`` for a track's mixture: a causal model streamed, a non-causal
    model (the paper's arrangement, for comparison) run offline on the whole track, a model's
    oracle masks (offline), or the mixture baseline."""

    def __init__(self, name_or_path: str, device: str, sample_rate_hz: int | None, n_q: int | None = None,
                 oracle: str | None = None) -> None:
        self.name = name_or_path
        self.n_q: int | None = None
        self.oracle = oracle
        self.runtime: StreamingSeparator | None = None
        self.offline: RQVAESeparator | None = None
        if oracle is not None and oracle not in ORACLE_MASKS:
            raise ValueError(f"unknown oracle mask {oracle!r}: choose one of {', '.join(ORACLE_MASKS)}")
        if name_or_path == MIXTURE_BASELINE:
            if oracle is not None:
                raise ValueError("the mixture baseline has no masks: oracle masks need a mask model")
            self.stems: tuple[str, ...] | None = None  # every stem the data has
            self.sample_rate_hz = sample_rate_hz or SeparatorConfig().sample_rate_hz
            return
        net = load_separator(name_or_path)
        if oracle is not None and net.config.output != "mask":
            raise ValueError(f"model {name_or_path} has output={net.config.output!r}: oracle masks need a mask model")
        self.n_q = None if oracle is not None else net.quantizer.check_n_q(n_q)
        if net.config.causal and oracle is None:
            self.runtime = StreamingSeparator(net, device=device, n_q=self.n_q)
        else:
            self.offline = net.to(device)
        self.stems = net.config.stems
        self.sample_rate_hz = net.config.sample_rate_hz

    def evaluated_stems(self, track: Track) -> list[str]:
        names = list(track.stems) if self.stems is None else [s for s in self.stems if s in track.stems]
        if not names:
            raise ValueError(f"model {self.name} has stems {', '.join(self.stems)} but track {track.name} has "
                             f"{', '.join(track.stems)}: no stem in common to evaluate")
        return names

    def estimate(self, track: Track, names: list[str]) -> np.ndarray:
        if self.stems is None:
            return np.broadcast_to(track.mixture, (len(names),) + track.mixture.shape)
        if self.oracle is not None:
            references = np.stack([track.stems.get(s, np.zeros_like(track.mixture)) for s in self.stems])
            stems = oracle_stems(self.offline, track.mixture, references, self.oracle)
        elif self.runtime is not None:
            stems = self.runtime.separate(track.mixture)  # [S_model, C, T]
        else:
            stems = _run_offline(self.offline, track.mixture, self.n_q)
        return stems[[self.stems.index(n) for n in names]]


@torch.inference_mode()
def _run_offline(net: RQVAESeparator, mixture: np.ndarray, n_q: int | None = None) -> np.ndarray:
    """A whole ``[C, T]`` track through the network (its first ``n_q`` quantizers) in one call
    (channels as the batch) -> ``[S, C, T]``, aligned with the input (the network's
    ``output_delay_samples`` removed)."""
    channels, n = mixture.shape
    delay, frame = net.config.output_delay_samples, net.config.frame_size
    padded = np.zeros((channels, 1, -(-(n + delay) // frame) * frame), np.float32)
    padded[:, 0, :n] = mixture
    device = next(net.parameters()).device
    out = net(torch.from_numpy(padded).to(device), n_q).stems.float().cpu().numpy()  # [C, S, T']
    return out[:, :, delay:delay + n].transpose(1, 0, 2)


def _museval_sdr(estimates: np.ndarray, references: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Per-stem median BSSEval v4 SDR over 1 s windows: ``[S, C, T]`` each -> ``[S]`` (NaN: silent stem)."""
    import museval

    out = np.full(len(references), np.nan)
    audible = [i for i, r in enumerate(references) if np.any(r)]  # museval rejects all-zero references
    if not audible:
        return out
    win = int(MUSEVAL_WINDOW_S * sample_rate_hz)
    sdr = museval.evaluate(references[audible].transpose(0, 2, 1), estimates[audible].transpose(0, 2, 1),
                           win=win, hop=win, mode="v4", padding=True)[0]  # [S, windows]
    with warnings.catch_warnings():  # a stem silent in every window: all-NaN median, NaN kept
        warnings.simplefilter("ignore", RuntimeWarning)
        out[audible] = np.nanmedian(sdr, axis=1)
    return out


def evaluate(name_or_path: str, data: str | Path, format: str, limit: int | None = None,
             names: Sequence[str] | None = None, sdr: bool = True, channels: int = 2, device: str = "cpu",
             sample_rate_hz: int | None = None, progress: Callable[[str], None] | None = None,
             n_q: int | None = None, oracle: str | None = None) -> EvalResult:
    """Score the model ``name_or_path`` (a shipped name, a checkpoint folder, or ``"mixture"``) on ``data``.

    Tracks are read at the model's rate (``sample_rate_hz`` for the mixture baseline, default
    the default config's 22.05 kHz) with ``channels`` channels. ``sdr=False`` skips museval.
    ``n_q`` runs the model with its first ``n_q`` quantizers (default all; ignored by the baseline).
    ``oracle`` (``"psm"`` or ``"irm"``) scores the model's ideal masks instead (its ``n_q`` is None).
    """
    wall0 = time.perf_counter()
    estimator = _Estimator(name_or_path, device, sample_rate_hz, n_q, oracle)
    rate = estimator.sample_rate_hz
    paths = list_tracks(data, format, names, limit)
    windows: dict[str, list[np.ndarray]] = {}
    fullband: dict[str, list[np.ndarray]] = {}
    sdrs: dict[str, list[float]] = {}
    track_names = []
    audio_s = 0.0
    for path in paths:
        track = read_track(path, format, rate, channels)
        stem_names = estimator.evaluated_stems(track)
        references = np.stack([track.stems[n] for n in stem_names])  # [S, C, T]
        estimates = estimator.estimate(track, stem_names)
        protocol = [to_protocol_rate(np.asarray(a), rate) for a in (estimates, references, track.mixture)]
        for c in range(track.mixture.shape[0]):
            scores = windowed_si_sdri(protocol[0][:, c], protocol[1][:, c], protocol[2][c], PROTOCOL_RATE_HZ)  # [W, S]
            full = (scores if rate == PROTOCOL_RATE_HZ else
                    windowed_si_sdri(estimates[:, c], references[:, c], track.mixture[c], rate))
            for j, n in enumerate(stem_names):
                windows.setdefault(n, []).append(scores[:, j])
                fullband.setdefault(n, []).append(full[:, j])
        if sdr:
            for n, value in zip(stem_names, _museval_sdr(np.asarray(estimates), references, rate)):
                if math.isfinite(value):
                    sdrs.setdefault(n, []).append(float(value))
        track_names.append(track.name)
        audio_s += track.num_samples / rate
        if progress is not None:
            progress(f"{track.name}: {track.num_samples / rate:.1f} s, stems {', '.join(stem_names)}")
    stems, absent = {}, []
    for n, parts in windows.items():
        values = np.concatenate(parts)
        active = values[~np.isnan(values)]  # the windows where the stem was active
        if not active.size:
            absent.append(n)
            continue
        full = np.concatenate(fullband[n])
        stems[n] = StemScore(float(active.mean()), float(np.median(sdrs[n])) if sdr and sdrs.get(n) else None,
                             int(active.size), float(np.nanmean(full)) if np.isfinite(full).any() else math.nan)
    mean = float(np.mean([s.si_sdri_db for s in stems.values()])) if stems else None
    return EvalResult(name_or_path, len(track_names), stems, mean, str(data), format, rate, track_names,
                      round(audio_s, 3), round(time.perf_counter() - wall0, 3), absent, estimator.n_q, oracle)


def common_stems(results: Sequence[EvalResult]) -> list[str]:
    """The stems every result scored, in the first result's order."""
    if not results:
        return []
    return [s for s in results[0].stems if all(s in r.stems for r in results[1:])]


def _mean_over(result: EvalResult, stems: Sequence[str]) -> float | None:
    return float(np.mean([result.stems[s].si_sdri_db for s in stems])) if stems else None


def format_table(results: list[EvalResult]) -> str:
    """A terminal table: one row per stem, SI-SDRi / SDR / windows columns for each result side by side.

    ``absent``: the stem is shared with the data but silent in every window scored; ``-``: the
    model has no such stem. When the results scored different stems, the ``mean`` row averages
    each result over the stems all of them scored, and a line below names those stems.
    """
    stems = list(dict.fromkeys(s for r in results for s in r.stems))
    head = f"{'stem':<10}" + "".join(f" | {r.label[-24:]:>24} {'SDR dB':>7} {'windows':>7}" for r in results)
    sub = f"{'':<10}" + "".join(f" | {'SI-SDRi dB':>24} {'':>7} {'':>7}" for _ in results)
    lines = [head, sub, "-" * len(head)]

    def num(x: float | None) -> str:
        return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"
    stems += [s for r in results for s in r.absent_stems if s not in stems]
    for s in stems:
        row = f"{s:<10}"
        for r in results:
            score = r.stems.get(s)
            if score is not None:
                row += f" | {num(score.si_sdri_db):>24} {num(score.sdr_db):>7} {score.windows:>7}"
            else:
                row += f" | {'absent' if s in r.absent_stems else '-':>24} {'-':>7} {'-':>7}"
        lines.append(row)
    common = common_stems(results)
    differ = any(set(r.stems) != set(results[0].stems) for r in results[1:])
    means = [_mean_over(r, common) if differ else r.mean_si_sdri_db for r in results]
    lines.append(f"{'mean*' if differ else 'mean':<10}" + "".join(f" | {num(m):>24} {'':>7} {'':>7}" for m in means))
    if differ:
        lines.append(f"* mean over {', '.join(common)}: the stems every model scored" if common
                     else "* no stem was scored for every model: no mean to compare")
    absent = sorted({s for r in results for s in r.absent_stems})
    if absent:
        lines.append(f"absent: {', '.join(absent)} silent in every window scored "
                     "(not scored, as in the paper's protocol)")
    lines.append(f"({results[0].tracks} tracks)" if results else "")
    return "\n".join(lines)
