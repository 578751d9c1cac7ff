"""``stemstream bench-host`` writes real timings as JSON."""
from __future__ import annotations

import json

from stemstream_cli import main


def test_bench_host_writes_json(small_model_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench-host", "--model", str(small_model_dir), "--seconds", "0.2", "--repeats", "2",
                 "--sample-rate-hz", "48000", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["seconds_of_audio"] == 0.2 and result["sample_rate_hz"] == 48000 and len(result["wall_s"]) == 2
    # the factor comes from the timed runs: 0.2 s of audio over a time between the fastest and slowest run
    assert all(t > 0 for t in result["wall_s"])
    assert min(result["wall_s"]) <= 0.2 / result["realtime_factor"] <= max(result["wall_s"])
    assert result["latency_samples"] > 0 and result["model"] == str(small_model_dir)
