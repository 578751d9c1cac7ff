"""The compute profiler: JSON rows and plot, frame accounting, deadline misses, modes."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

import model
import stemstream_cli
from latency.modes import ModeError, build_runtime, check_mode
from latency.profile import summarize, time_blocks
from tests.helpers import small_config

ISSUE_KEYS = {"device", "mode", "block", "p50_ms", "p95_ms", "p99_ms", "max_ms", "budget_ms", "load_p99",
              "deadline_misses", "rtf"}


@pytest.fixture
def tiny_config_json(tmp_path):
    path = tmp_path / "tiny.json"
    small_config().save(path)
    return path


def test_profile_cli_writes_rows_and_plot(tiny_config_json, tmp_path):
    import matplotlib.image

    out_json, out_png = tmp_path / "profile.json", tmp_path / "profile.png"
    seconds = 0.15
    rc = stemstream_cli.main(["profile", "--config-json", str(tiny_config_json), "--blocks", "16,64",
                              "--channels", "1,2", "--seconds", str(seconds), "--warmup-seconds", "0.05",
                              "--threads", "1", "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    rows = json.loads(out_json.read_text())
    assert [(r["channels"], r["block"]) for r in rows] == [(1, 16), (1, 64), (2, 16), (2, 64)]
    frame = small_config().frame_size
    for r in rows:
        assert ISSUE_KEYS <= set(r)
        assert (r["device"], r["mode"], r["threads"], r["random_weights"]) == ("cpu", "numba", 1, True)  # the cpu default
        assert r["calls"] == math.ceil(seconds * 22050 / r["block"])
        assert r["budget_ms"] == pytest.approx(1000 * r["block"] / 22050)
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["load_p99"] == pytest.approx(r["p99_ms"] / r["budget_ms"])
        assert 0 <= r["deadline_misses"] <= r["calls"]
        assert r["rtf"] > 0
        # a 16-sample block runs the 32-sample frame on every other call; 64 runs two per call
        assert r["frames_per_call"] == pytest.approx(r["block"] / frame, abs=0.01)
        assert r["frame_call_fraction"] == pytest.approx(min(1.0, r["block"] / frame), abs=0.01)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height_px, width_px = matplotlib.image.imread(out_png).shape[:2]
    assert width_px > 1000 and height_px > 4 * 200  # one histogram + timeline row per configuration


def test_frames_per_call_match_the_model_calls():
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    frames_seen = []
    net.register_forward_pre_hook(lambda _m, args: frames_seen.append(args[0].shape[-1] // net.frame_size))
    runtime = model.StreamingSeparator(net, backend="torch")  # the hook sees torch calls
    timings = time_blocks(runtime, block_samples=48, channels=1, seconds=0.05, warmup_seconds=0.01)
    measured = len(timings.frames)
    # 48-sample blocks over 32-sample frames: 1, 2, 1, 2, ... frames; each call runs one forward
    assert list(timings.frames) == frames_seen[-measured:]
    assert set(timings.frames) == {1, 2}


@pytest.mark.parametrize("block, frame_calls_miss_only", [(16, True), (256, False)])
def test_slowed_model_shows_deadline_misses(block, frame_calls_miss_only):
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    budget_s = block / net.config.sample_rate_hz
    net.register_forward_pre_hook(lambda _m, _a: time.sleep(1.5 * budget_s))  # every frame step too slow
    runtime = model.StreamingSeparator(net, backend="torch")  # the hook sees torch calls
    timings = time_blocks(runtime, block, channels=1, seconds=0.2, warmup_seconds=0.0)
    stats = summarize(timings, block, net.config.sample_rate_hz)
    ran_frames = timings.frames > 0
    assert np.all(timings.compute_ms[ran_frames] > stats.budget_ms)
    assert stats.deadline_misses >= ran_frames.sum() > 0
    assert stats.max_ms > 1.5 * stats.budget_ms
    if frame_calls_miss_only:  # block of half a frame: only every other call runs the slow step
        assert ran_frames.mean() == pytest.approx(0.5, abs=0.02)
    else:
        assert stats.deadline_misses == stats.calls and stats.load_p99 > 1.5 and stats.rtf > 1.5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_cuda_modes_without_cuda_give_a_clear_message(tiny_config_json, tmp_path, capsys):
    with pytest.raises(ModeError, match="needs --device cuda"):
        check_mode("cpu", "graph")
    with pytest.raises(ModeError, match="no usable CUDA"):
        check_mode("cuda", "eager")
    with pytest.raises(ModeError, match="unknown mode 'fast'; choose from eager, graph, compiled"):
        check_mode("cpu", "fast")
    rc = stemstream_cli.main(["profile", "--config-json", str(tiny_config_json), "--mode", "eager,graph",
                              "--json", str(tmp_path / "x.json")])
    assert rc == 2
    assert "mode 'graph' replays a CUDA graph, which needs --device cuda" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_missing_model_points_to_random_weights(tmp_path, capsys):
    rc = stemstream_cli.main(["profile", "--model", str(tmp_path / "nope"), "--json", str(tmp_path / "x.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no model" in err and "--config-json default" in err


def test_compiled_frame_step_matches_eager():
    """torch.compile's tracing of the stateful frame step (backend 'eager': no code generation)."""
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 32 * 12))).astype(np.float32)
    blocks = [x[:, i:i + 48] for i in range(0, x.shape[1], 48)]  # 1 and 2 frames per call
    eager = build_runtime(net, "cpu", "eager")
    expected = np.concatenate([eager.process(b) for b in blocks], axis=-1)
    compiled = build_runtime(net, "cpu", "compiled", compile_backend="eager")
    got = np.concatenate([compiled.process(b) for b in blocks], axis=-1)
    assert np.abs(expected[..., 31:]).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_profile_runs_without_audio_packages(tiny_config_json, tmp_path):
    """``python -m latency profile`` (what scripts/gpu_profile.sh runs) needs no audio or host packages."""
    import subprocess
    import sys
    from pathlib import Path

    blocked = ["pedalboard", "sounddevice", "rtmidi", "soxr", "jack", "mido", "rt", "plugin_host"]
    code = ("import sys\n"
            f"for name in {blocked!r}: sys.modules[name] = None  # any import of them now fails\n"
            "from latency.__main__ import main\n"
            f"sys.exit(main(['profile', '--config-json', {str(tiny_config_json)!r}, '--blocks', '64', "
            f"'--seconds', '0.05', '--warmup-seconds', '0', '--json', {str(tmp_path / 'p.json')!r}]))\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "p.json").read_text())[0]["block"] == 64


def test_numba_mode_is_cpu_only():
    with pytest.raises(ModeError, match="mode 'numba' runs numba kernels on the CPU: use --device cpu"):
        check_mode("cuda", "numba")
    check_mode("cpu", "numba")


def test_numba_mode_matches_eager_and_profiles(tiny_config_json, tmp_path):
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 32 * 12))).astype(np.float32)
    blocks = [x[:, i:i + 48] for i in range(0, x.shape[1], 48)]
    eager = build_runtime(net, "cpu", "eager")
    expected = np.concatenate([eager.process(b) for b in blocks], axis=-1)
    numba_runtime = build_runtime(net, "cpu", "numba")
    assert numba_runtime.backend == "numba"
    got = np.concatenate([numba_runtime.process(b) for b in blocks], axis=-1)
    assert np.abs(expected[..., 31:]).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-6)
    out_json = tmp_path / "p.json"
    rc = stemstream_cli.main(["profile", "--config-json", str(tiny_config_json), "--mode", "eager,numba",
                              "--blocks", "64", "--seconds", "0.05", "--warmup-seconds", "0", "--json", str(out_json)])
    assert rc == 0
    rows = json.loads(out_json.read_text())
    assert [r["mode"] for r in rows] == ["eager", "numba"]
    assert all(r["p50_ms"] > 0 and r["setup_s"] > 0 for r in rows)
