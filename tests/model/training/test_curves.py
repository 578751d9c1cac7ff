"""`stemstream curves`: validation curves of runs side by side, with their summaries."""
from __future__ import annotations

import json

import matplotlib.image
import pytest

from model.training.curves import RunSpec
from stemstream_cli import main

ROWS = {"a": [(250, 1.0, 2.0, 1.5), (500, 1.5, 2.5, 2.0), (750, 2.0, 2.0, 2.0)],
        "b": [(100, 0.5, 0.5, 0.5), (200, 0.7, 0.9, 0.8)]}


def _write_run(folder, rows) -> None:
    folder.mkdir()
    lines = ["step,vocals,drums,mean"] + [",".join(str(v) for v in r) for r in rows]
    (folder / "valid.csv").write_text("\n".join(lines) + "\n")


def test_curves_plots_the_runs_and_summarises_them(tmp_path, capsys):
    for name, rows in ROWS.items():
        _write_run(tmp_path / name, rows)
    png, summary = tmp_path / "c.png", tmp_path / "c.json"
    assert main(["curves", f"{tmp_path / 'a'}@1000=first", str(tmp_path / "b"), "--png", str(png),
                 "--target-db", "5.5", "--stem-target-db", "3", "--json", str(summary)]) == 0
    height_px, width_px = matplotlib.image.imread(png).shape[:2]
    assert width_px > 2 * height_px  # a row of panels: mean, vocals, drums
    first, second = json.loads(summary.read_text())
    assert (first["label"], first["first_step"], first["last_step"]) == ("first", 1250, 1750)
    assert (first["best_step"], first["best_mean_db"], first["last_mean_db"]) == (1500, 2.0, 2.0)  # first best
    assert first["slope_db_per_1000_steps"] == pytest.approx(1.0)  # 1.5 -> 2.0 over 500 steps
    assert first["last_row"] == {"vocals": 2.0, "drums": 2.0, "mean": 2.0}
    assert (second["label"], second["last_mean_db"]) == ("b", 0.8)
    assert "first: steps 1250-1750, last 2.00 dB" in capsys.readouterr().out


def test_a_missing_run_or_bad_offset_is_a_clear_error(tmp_path, capsys):
    assert main(["curves", str(tmp_path / "none"), "--png", str(tmp_path / "c.png")]) == 2
    assert "valid.csv not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="whole number of steps"):
        RunSpec.parse("runs/x@abc")
