"""The profile plot: per configuration, a histogram and a timeline of per-block compute time.

Both axes of time are logarithmic (buffering calls take microseconds, frame steps
milliseconds); the block's budget is a red line and calls over it are red dots, so jitter
and misses show at a glance. matplotlib is imported only here (Agg backend).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .profile import ProfileResult


def plot_profile(results: list[ProfileResult], path: str | Path) -> Path:
    """Draw one row of two panels per result into ``path`` (PNG); returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("nothing to plot: no profile results")
    fig, axes = plt.subplots(len(results), 2, figsize=(13, 2.4 * len(results) + 0.6),
                             gridspec_kw={"width_ratios": [1, 2]}, squeeze=False)
    for (hist_ax, time_ax), result in zip(axes, results):
        _draw(hist_ax, time_ax, result)
    first = results[0].row
    fig.suptitle(f"per-block compute time, {first.model}{' (random weights)' if first.random_weights else ''}"
                 f" — {first.machine}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _draw(hist_ax, time_ax, result: ProfileResult) -> None:
    row, st, ms = result.row, result.row.stats, np.maximum(result.timings.compute_ms, 1e-4)
    high = max(ms.max(), st.budget_ms) * 1.5
    low = min(ms.min() / 1.5, st.budget_ms / 1.5, high / 20)  # at least a decade, so ticks read
    bins = np.geomspace(low, high, 60)
    hist_ax.hist(ms, bins=bins, color="tab:blue")
    hist_ax.set_xscale("log")
    hist_ax.set_yscale("log")
    _plain_log_ticks(hist_ax.xaxis)
    hist_ax.axvline(st.budget_ms, color="tab:red", linestyle="--", label=f"budget {st.budget_ms:.2f} ms")
    hist_ax.axvline(st.p99_ms, color="black", linestyle=":", label=f"p99 {st.p99_ms:.2f} ms")
    hist_ax.set_xlabel("compute per block (ms)")
    hist_ax.set_ylabel("calls")
    hist_ax.legend(fontsize=7, loc="upper left")
    label = (f"{row.device} {row.mode}, {row.channels} ch, block {row.block} ({st.budget_ms:.2f} ms), "
             f"{row.threads} thread{'s' if row.threads > 1 else ''}")
    hist_ax.set_title(label, fontsize=8, loc="left")

    t_s = np.arange(len(ms)) * st.budget_ms / 1000.0
    late = ms > st.budget_ms
    time_ax.plot(t_s, ms, ".", markersize=2, color="tab:blue")
    time_ax.plot(t_s[late], ms[late], ".", markersize=4, color="tab:red")
    time_ax.axhline(st.budget_ms, color="tab:red", linestyle="--")
    time_ax.set_yscale("log")
    time_ax.set_ylim(low, high)
    _plain_log_ticks(time_ax.yaxis)
    time_ax.set_xlabel("stream time (s)")
    time_ax.set_ylabel("ms")
    summary = (f"p50 {st.p50_ms:.2f}  p99 {st.p99_ms:.2f}  max {st.max_ms:.2f} ms · load p99 "
               f"{st.load_p99:.2f} · misses {st.deadline_misses}/{st.calls} · rtf {st.rtf:.2f}")
    if st.frame_call_fraction < 1:
        summary += f" · 1 call in {1 / st.frame_call_fraction:.0f} runs a frame"
    time_ax.set_title(summary, fontsize=8, loc="left")


def _plain_log_ticks(axis) -> None:
    """Decimal labels (0.1, 1, 10) on a log axis, minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())
