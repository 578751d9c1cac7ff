"""Validation curves of training runs (``OUT/valid.csv``) in one figure: does more training help?

``stemstream curves RUN[@OFFSET][=LABEL] ... --png OUT.png`` plots each run's mean and per-stem
SI-SDRi against its steps (``OFFSET`` added: the steps of the run it was warm-started from), with
optional target lines, and prints (or writes as JSON) each run's last and best rows and the
slope of its last points in dB per 1,000 steps.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SLOPE_POINTS = 4  # the last validation rows the slope is fitted over


@dataclass(frozen=True)
class RunSpec:
    """One run to plot: its folder, the steps before its step 0, and a legend label."""
    folder: Path
    offset_steps: int
    label: str

    @classmethod
    def parse(cls, text: str) -> "RunSpec":
        """``FOLDER[@OFFSET][=LABEL]`` (label: the folder's name)."""
        spec, _, label = text.partition("=")
        folder, _, offset = spec.partition("@")
        try:
            offset_steps = int(offset) if offset else 0
        except ValueError:
            raise ValueError(f"{text!r}: the offset after '@' must be a whole number of steps") from None
        return cls(Path(folder), offset_steps, label or Path(folder).name)


@dataclass(frozen=True)
class CurveSummary:
    """A run's curve at a glance (steps include the offset; dB of mean SI-SDRi)."""
    label: str
    first_step: int
    last_step: int
    last_mean_db: float
    best_step: int
    best_mean_db: float
    slope_db_per_1000_steps: float
    last_row: dict[str, float]


def read_curve(folder: Path) -> dict[str, np.ndarray]:
    """``folder/valid.csv`` -> column name -> values ``[rows]`` (``step`` and each score)."""
    path = Path(folder) / "valid.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a training run folder (stemstream train --out)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows or "step" not in rows[0] or "mean" not in rows[0]:
        raise ValueError(f"{path} has no validation rows with 'step' and 'mean' columns")
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def summarise(run: RunSpec, curve: dict[str, np.ndarray]) -> CurveSummary:
    """Last and best mean, and the slope of the last :data:`SLOPE_POINTS` rows (0 for one row)."""
    steps, mean = curve["step"] + run.offset_steps, curve["mean"]
    tail = slice(-SLOPE_POINTS, None)
    slope = float(np.polyfit(steps[tail], mean[tail], 1)[0] * 1000) if len(steps) > 1 else 0.0
    best = int(np.argmax(mean))
    return CurveSummary(run.label, int(steps[0]), int(steps[-1]), float(mean[-1]), int(steps[best]),
                        float(mean[best]), slope, {k: float(v[-1]) for k, v in curve.items() if k != "step"})


def plot_curves(runs: list[RunSpec], png: Path, target_db: float | None = None,
                stem_target_db: float | None = None, title: str = "validation SI-SDRi") -> list[CurveSummary]:
    """One panel for the mean and one per stem (every stem any run scored), each run a line;
    targets (mean, every stem) as dashed lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [read_curve(r.folder) for r in runs]
    stems = list(dict.fromkeys(k for c in curves for k in c if k not in ("step", "mean")))
    panels = ["mean", *stems]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), sharex=True, squeeze=False)
    for run, curve in zip(runs, curves):
        for ax, name in zip(axes[0], panels):
            if name in curve:
                ax.plot(curve["step"] + run.offset_steps, curve[name], marker=".", label=run.label)
    for ax, name in zip(axes[0], panels):
        ax.set_title(name)
        ax.set_xlabel("steps in all")
        ax.grid(alpha=0.3)
        target = target_db if name == "mean" else stem_target_db
        if target is not None:
            ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g} dB")
    axes[0][0].set_ylabel("SI-SDRi (dB)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [summarise(r, c) for r, c in zip(runs, curves)]


def summaries_json(summaries: list[CurveSummary]) -> str:
    return json.dumps([asdict(s) for s in summaries], indent=1)
