"""The profile plot: a summary panel, then a histogram and a timeline of per-block compute time per configuration.

The summary panel answers the question at a glance: for every block size (in samples at the
model's rate, in ms, and in host samples at 44.1 and 48 kHz), p50 and p99 compute time as
bars beside the block's deadline (its duration), marked "meets" or "misses". Below it, one
row per configuration: a histogram of per-call compute time and a timeline of every call,
the deadline a red dashed line and calls over it red dots.

Legibility rules (checked by ``tests/latency/test_plot.py``): every text at least
``MIN_FONT_PT`` points, at least two labelled ticks on every axis (log axes get 1-2-5 labels
when they span little more than a decade), units on every axis. matplotlib is imported only
here (Agg backend).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .profile import ProfileResult, ProfileRow

MIN_FONT_PT = 10.0
DPI = 100                       # a 12-inch figure is 1200 px wide: 10 pt reads at 100 % zoom
HOST_RATES_HZ = (44100, 48000)  # the host rates a block is also given in
SUMMARY_AXES_LABEL = "summary"  # ``Axes.get_label()`` of the summary panel (tests find it by this)
P50_GID, P99_GID, DEADLINE_GID = "p50", "p99", "deadline"


def plot_profile(results: list[ProfileResult], path: str | Path) -> Path:
    """Draw :func:`profile_figure` into ``path`` (PNG, ``DPI`` dots per inch); returns the path."""
    import matplotlib.pyplot as plt

    fig = profile_figure(results)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def profile_figure(results: list[ProfileResult]):
    """The whole figure (a ``matplotlib.figure.Figure``): the summary panel, then two panels per result."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("nothing to plot: no profile results")
    with plt.rc_context({"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10,
                         "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 13}):
        summary_h, row_h = 4.2, 3.0
        width_in = max(13.0, 1.5 * len(results))  # room for every block's label in the summary
        fig = plt.figure(figsize=(width_in, 1.6 + summary_h + row_h * len(results)), layout="constrained")
        grid = fig.add_gridspec(1 + len(results), 2, height_ratios=[summary_h] + [row_h] * len(results),
                                width_ratios=[1, 2])
        _draw_summary(fig.add_subplot(grid[0, :], label=SUMMARY_AXES_LABEL), results)
        for i, result in enumerate(results):
            _draw_histogram(fig.add_subplot(grid[i + 1, 0]), result)
            _draw_timeline(fig.add_subplot(grid[i + 1, 1]), result)
        first = results[0].row
        loads = [r.row.load_average_1min for r in results]
        fig.suptitle(f"Per-block compute time: {first.model}{' (random weights)' if first.random_weights else ''}, "
                     f"{first.device}, {first.threads} thread{'s' if first.threads > 1 else ''}\n{first.machine}, "
                     f"1-min load average {min(loads):.1f}-{max(loads):.1f} during the run")
    return fig


def block_label(row: ProfileRow) -> str:
    """E.g. ``"128 @ 22.05 kHz\\n5.80 ms\\n256 @ 44.1 kHz\\n279 @ 48 kHz"``: the block in model samples, ms, host samples."""
    rate, ms = row.sample_rate_hz, 1000.0 * row.block / row.sample_rate_hz
    host = "\n".join(f"{row.block * r / rate:.0f} @ {r / 1000:g} kHz" for r in HOST_RATES_HZ if r != rate)
    return f"{row.block} @ {rate / 1000:g} kHz\n{ms:.2f} ms" + (f"\n{host}" if host else "")


def config_label(row: ProfileRow) -> str:
    """The configuration apart from its block: ``"numba, 1 ch"`` (the mode named only when it matters)."""
    return f"{row.mode}, {row.channels} ch"


def _draw_summary(ax, results: list[ProfileResult]) -> None:
    """Per configuration: p50 and p99 bars beside the deadline (a black line over the group)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = [r.row for r in results]
    x = np.arange(len(rows), dtype=float)
    p50 = np.array([r.stats.p50_ms for r in rows])
    p99 = np.array([r.stats.p99_ms for r in rows])
    deadline = np.array([r.stats.budget_ms for r in rows])
    meets = p99 <= deadline
    width = 0.36
    ax.bar(x - width / 2, p50, width, color="tab:blue", gid=P50_GID)
    ax.bar(x + width / 2, p99, width, color=np.where(meets, "tab:green", "tab:red"), gid=P99_GID)
    ax.hlines(deadline, x - 0.45, x + 0.45, colors="black", linewidth=2.5, gid=DEADLINE_GID)
    ax.set_yscale("log")
    low, high = min(p50.min(), deadline.min()) / 2.0, max(p99.max(), deadline.max()) * 6.0
    ax.set_ylim(low, high)
    _readable_log_axis(ax.yaxis, low, high)
    for xi, row, ok in zip(x, rows, meets):
        i = int(xi)
        ax.text(xi, max(deadline[i], p99[i]) * 1.2, f"{'meets' if ok else 'MISSES'}\nload p99 {row.stats.load_p99:.2f}",
                ha="center", va="bottom", fontsize=10, color="black" if ok else "tab:red")
    ax.set_xticks(x)
    many_configs = len({config_label(r) for r in rows}) > 1
    ax.set_xticklabels([block_label(r) + (f"\n{config_label(r)}" if many_configs else "") for r in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("block: samples at the model's rate, its duration (= the deadline), host samples at 44.1 / 48 kHz")
    ax.set_ylabel("compute per block (ms)")
    ax.set_title("p50 / p99 compute against the deadline, per block size", loc="left")
    handles = [Patch(color="tab:blue", label="p50"), Patch(color="tab:green", label="p99 within the deadline"),
               Patch(color="tab:red", label="p99 over the deadline"),
               Line2D([], [], color="black", linewidth=2.5, label="deadline (block duration)")]
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, frameon=False)
    ax.grid(axis="y", which="major", alpha=0.3)


def _time_range_ms(result: ProfileResult) -> tuple[np.ndarray, float, float]:
    st, ms = result.row.stats, np.maximum(result.timings.compute_ms, 1e-4)
    high = max(ms.max(), st.budget_ms) * 1.5
    low = min(ms.min() / 1.5, st.budget_ms / 1.5, high / 20)  # at least a decade and a bit
    return ms, low, high


def _draw_histogram(ax, result: ProfileResult) -> None:
    row, st = result.row, result.row.stats
    ms, low, high = _time_range_ms(result)
    counts, _, _ = ax.hist(ms, bins=np.geomspace(low, high, 60), color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    _readable_log_axis(ax.xaxis, low, high)
    ax.set_yscale("log")
    top = max(2.0, counts.max() * 3.0)
    ax.set_ylim(0.7, top)
    _readable_log_axis(ax.yaxis, 0.7, top)
    ax.axvline(st.budget_ms, color="tab:red", linestyle="--", label=f"deadline {st.budget_ms:.2f} ms")
    ax.axvline(st.p99_ms, color="black", linestyle=":", label=f"p99 {st.p99_ms:.2f} ms")
    ax.set_xlabel("compute per block (ms)")
    ax.set_ylabel("calls (count)")
    ax.legend(loc="upper left")
    ax.set_title(f"{config_label(row)}, block {' = '.join(block_label(row).splitlines()[:2])}", loc="left")


def _draw_timeline(ax, result: ProfileResult) -> None:
    st = result.row.stats
    ms, low, high = _time_range_ms(result)
    t_s = np.arange(len(ms)) * st.budget_ms / 1000.0
    late = ms > st.budget_ms
    ax.plot(t_s, ms, ".", markersize=3, color="tab:blue")
    ax.plot(t_s[late], ms[late], ".", markersize=5, color="tab:red")
    ax.axhline(st.budget_ms, color="tab:red", linestyle="--")
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    _readable_log_axis(ax.yaxis, low, high)
    ax.set_xlim(0, max(t_s[-1], st.budget_ms / 1000.0) if len(t_s) else 1.0)
    ax.set_xlabel("stream time (s)")
    ax.set_ylabel("compute (ms)")
    summary = (f"p50 {st.p50_ms:.2f}, p99 {st.p99_ms:.2f}, max {st.max_ms:.2f} ms; "
               f"misses {st.deadline_misses}/{st.calls}; rtf {st.rtf:.2f}")
    if st.frame_call_fraction < 1:
        summary += f"; 1 call in {1 / st.frame_call_fraction:.0f} runs a frame"
    ax.set_title(summary, loc="left")


def _readable_log_axis(axis, low: float, high: float) -> None:
    """Decimal labels on a log axis, with enough of them: 1-2-5 per decade when it spans under 2.5 decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = math.log10(high / low)
    subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0))
    axis.set_minor_formatter(NullFormatter())
