"""The profile plot as a reader sees it: text size, readable ticks, units, and a summary that tells the truth."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import model
from latency.plot import (DEADLINE_GID, MIN_FONT_PT, P50_GID, P99_GID, SUMMARY_AXES_LABEL, plot_profile,
                          profile_figure)
from latency.profile import BlockTimings, ModelInfo, ProfileResult, run_profile, summarize
from tests.helpers import small_config


@pytest.fixture(scope="module")
def results() -> list[ProfileResult]:
    """A real profile of a tiny model (two block sizes), plus one configuration that misses its deadline."""
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    measured = run_profile(net, ModelInfo("tiny", True), "cpu", ["numba"], [16, 128], [1], seconds=0.1,
                           warmup_seconds=0.02, log=lambda _line: None)
    # a slow configuration: every call 1.3-1.4x its 2.9 ms deadline (a narrow range on a log axis)
    ms = np.linspace(3.8, 4.0, 50)
    slow = BlockTimings(ms, np.ones(50, np.int64))
    row = dataclasses.replace(measured[0].row, block=64, stats=summarize(slow, 64, 22050))
    return measured + [ProfileResult(row, slow)]


@pytest.fixture(scope="module")
def figure(results):
    import matplotlib.pyplot as plt

    fig = profile_figure(results)
    fig.canvas.draw()
    yield fig
    plt.close(fig)


def _visible_texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_text_is_at_least_10_pt(figure):
    texts = _visible_texts(figure)
    assert len(texts) > 20  # titles, labels, tick labels, legends, verdicts
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < MIN_FONT_PT]
    assert not small


def test_every_axis_has_two_labelled_ticks_and_a_unit(figure):
    for ax in figure.axes:
        for axis, label, (low, high) in ((ax.xaxis, ax.get_xlabel(), sorted(ax.get_xlim())),
                                         (ax.yaxis, ax.get_ylabel(), sorted(ax.get_ylim()))):
            shown = [t.get_text() for t, loc in zip(axis.get_majorticklabels(), axis.get_majorticklocs())
                     if t.get_text().strip() and low <= loc <= high]
            assert len(shown) >= 2, f"{ax.get_title()!r}: {label!r} shows ticks {shown}"
            assert any(unit in label for unit in ("(ms)", "(s)", "(count)", "samples")), label


def test_summary_panel_shows_the_profile_p50_p99_and_deadline(figure, results):
    summary = next(ax for ax in figure.axes if ax.get_label() == SUMMARY_AXES_LABEL)
    bars = {c.patches[0].get_gid(): c for c in summary.containers}
    rows = [r.row for r in results]
    np.testing.assert_allclose([b.get_height() for b in bars[P50_GID]], [r.stats.p50_ms for r in rows])
    np.testing.assert_allclose([b.get_height() for b in bars[P99_GID]], [r.stats.p99_ms for r in rows])
    deadline = next(c for c in summary.collections if c.get_gid() == DEADLINE_GID)
    np.testing.assert_allclose([seg[0][1] for seg in deadline.get_segments()], [r.stats.budget_ms for r in rows])
    # the slow configuration is red and says it misses; verdicts follow p99 against the deadline
    verdicts = [t.get_text().split("\n")[0] for t in summary.texts]
    assert verdicts == ["meets" if r.stats.p99_ms <= r.stats.budget_ms else "MISSES" for r in rows]
    assert verdicts[-1] == "MISSES"
    red = bars[P99_GID][-1].get_facecolor()
    assert red[0] > 0.7 and red[1] < 0.3  # tab:red


def test_block_sizes_are_given_in_model_samples_ms_and_host_samples(figure):
    summary = next(ax for ax in figure.axes if ax.get_label() == SUMMARY_AXES_LABEL)
    labels = [t.get_text() for t in summary.get_xticklabels()]
    # 128 samples at 22.05 kHz = 5.80 ms = 256 samples at 44.1 kHz = 278.6 at 48 kHz
    assert "128 @ 22.05 kHz" in labels[1] and "5.80 ms" in labels[1]
    assert "256 @ 44.1 kHz" in labels[1] and "279 @ 48 kHz" in labels[1]


def test_plot_file_is_drawn_at_a_readable_size(results, tmp_path):
    import matplotlib.image

    out = plot_profile(results, tmp_path / "p.png")
    height_px, width_px = matplotlib.image.imread(out).shape[:2]
    assert width_px >= 1200 and height_px >= 400 + 250 * len(results)
