"""Catalogues: folders, globs and @lists; --jobs 2 equals one process; interrupted runs resume; Ray."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from plugin_host import StemSeparator
from plugin_host.batch import planned_outputs, separate_files
from plugin_host.catalogue import (CatalogueError, CatalogueSettings, expand_inputs, file_state, is_catalogue,
                                   marker_path, run_catalogue)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.flac"
# name -> (start s, seconds); two in a subfolder, mixed formats
CUTS = {"a.flac": (0.0, 1.5), "b.wav": (2.0, 1.5), "sub/c.flac": (4.0, 1.5), "sub/d.wav": (6.0, 1.5)}


def _cut(src: Path, dst: Path, start_s: float, seconds: float) -> None:
    audio, rate = soundfile.read(src, dtype="float32", always_2d=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(dst, audio[int(start_s * rate):int((start_s + seconds) * rate)], rate)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """Four short cuts of examples/demo.flac: cat/a.flac, cat/b.wav, cat/sub/c.flac, cat/sub/d.wav."""
    folder = tmp_path_factory.mktemp("catalogue") / "cat"
    for name, (start, seconds) in CUTS.items():
        _cut(DEMO, folder / name, start, seconds)
    return folder


def _outputs(out: Path) -> dict[str, np.ndarray]:
    """Every written stem under ``out``, by ``NAME/STEM`` (the track folder and the stem file)."""
    return {f"{p.parent.name}/{p.stem}": soundfile.read(p, dtype="float32")[0] for p in sorted(out.rglob("*.wav"))}


@pytest.fixture(scope="module")
def reference(catalogue, small_model_dir, tmp_path_factory) -> dict[str, np.ndarray]:
    """A plain one-process ``separate_files`` run over the four files."""
    out = tmp_path_factory.mktemp("reference")
    results = separate_files(StemSeparator(str(small_model_dir)), sorted(catalogue.rglob("*.*")), out)
    assert all(r.status == "done" for r in results), [r.error for r in results]
    outputs = _outputs(out)
    assert len(outputs) == 4 * 4
    return outputs


def _same(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    assert outputs.keys() == reference.keys()
    for k in reference:  # 24-bit files: the same samples give the same integers
        np.testing.assert_allclose(outputs[k], reference[k], atol=1e-6, err_msg=k)


def _settings(model_dir: Path) -> CatalogueSettings:
    return CatalogueSettings(str(model_dir))


def test_folders_globs_and_lists_expand_to_files_with_mirrored_output_folders(catalogue, tmp_path):
    out = tmp_path / "out"
    pairs = expand_inputs([str(catalogue)], out)
    assert [(p.relative_to(catalogue).as_posix(), o) for p, o in pairs] == [
        ("a.flac", out), ("b.wav", out), ("sub/c.flac", out / "sub"), ("sub/d.wav", out / "sub")]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my catalogue\n\n{catalogue / 'b.wav'}\n{catalogue}/sub/*.flac\n{catalogue / 'a.flac'}\n")
    pairs = expand_inputs([f"@{listing}", str(catalogue / "a.flac"), f"{catalogue}/**/*.wav"], out)
    assert [p.name for p, _ in pairs] == ["b.wav", "c.flac", "a.flac", "d.wav"]  # in order, no repeats
    assert all(o == out for _, o in pairs)
    brackets = tmp_path / "Song [Live].flac"  # an existing file is a file, though its name looks like a pattern
    shutil.copy(catalogue / "a.flac", brackets)
    assert expand_inputs([str(brackets)], out) == [(brackets, out)]
    assert not is_catalogue([str(brackets)], None, None) and is_catalogue([f"{catalogue}/*.wav"], None, None)
    inside = catalogue.parent / "inside-out"  # an --out inside the searched folder is not searched
    (inside / "x").mkdir(parents=True)
    shutil.copy(catalogue / "a.flac", inside / "x" / "stem.flac")
    assert all(inside not in p.parents for p, _ in expand_inputs([str(catalogue.parent)], inside))
    shutil.rmtree(inside)
    with pytest.raises(CatalogueError, match="matches no file"):
        expand_inputs([f"{catalogue}/*.mp3"], out)
    with pytest.raises(CatalogueError, match="cannot read the list file"):
        expand_inputs([f"@{tmp_path / 'missing.txt'}"], out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogueError, match="no audio files"):
        expand_inputs([str(tmp_path / "empty")], out)


def test_two_worker_processes_equal_one_process(catalogue, reference, small_model_dir, tmp_path):
    pairs = expand_inputs([str(catalogue)], tmp_path / "one")
    one = run_catalogue(pairs, tmp_path / "one", _settings(small_model_dir), jobs=1)
    pairs = expand_inputs([str(catalogue)], tmp_path / "two")
    two = run_catalogue(pairs, tmp_path / "two", _settings(small_model_dir), jobs=2)
    assert [r.status for r in one] == [r.status for r in two] == ["done"] * 4
    assert [r.input for r in two] == [p for p, _ in pairs]  # results in input order
    assert (tmp_path / "two" / "sub" / "c" / "bass.wav").is_file()  # the folder's layout mirrored
    _same(_outputs(tmp_path / "one"), reference)
    _same(_outputs(tmp_path / "two"), reference)


def test_a_rerun_skips_complete_files_and_redoes_partial_and_changed_ones(catalogue, reference, small_model_dir,
                                                                         tmp_path):
    out = tmp_path / "out"
    settings = _settings(small_model_dir)
    pairs = expand_inputs([str(catalogue)], out)
    assert [r.status for r in run_catalogue(pairs, out, settings)] == ["done"] * 4
    outs = {p.name: run_outputs for p, run_outputs in ((p, sorted((o / p.stem).glob("*.wav"))) for p, o in pairs)}
    mtimes = {k: [f.stat().st_mtime_ns for f in v] for k, v in outs.items()}
    # b: interrupted during the final renames (marker "started", one output torn, the temporary
    # folder of a killed worker left behind); c: an output deleted after it completed
    b_marker = marker_path(outs["b.wav"], catalogue / "b.wav")
    b_marker.write_text(json.dumps({**json.loads(b_marker.read_text()), "state": "started"}))
    outs["b.wav"][0].write_bytes(outs["b.wav"][0].read_bytes()[:1000])
    leftover = out / "b" / ".stemstream-partial-killed"
    leftover.mkdir()
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    outs["c.flac"][2].unlink()
    assert [file_state(p, outs[p.name], settings) for p, _ in pairs] == ["complete", "partial", "partial", "complete"]
    again = run_catalogue(pairs, out, settings)
    assert [r.status for r in again] == ["skipped", "done", "done", "skipped"]
    for name in ("a.flac", "d.wav"):  # complete files untouched
        assert [f.stat().st_mtime_ns for f in outs[name]] == mtimes[name]
    assert not leftover.exists()
    _same(_outputs(out), reference)
    # a changed input: refused without --overwrite (its outputs came from the old one), redone with it
    os.utime(catalogue / "a.flac")
    try:
        stale = run_catalogue(pairs, out, settings)
        assert [r.status for r in stale] == ["failed", "skipped", "skipped", "skipped"]
        assert "the input changed" in stale[0].error and "--overwrite" in stale[0].error
        assert [r.status for r in run_catalogue(pairs, out, settings, overwrite=True)][0] == "done"
    finally:
        _same(_outputs(out), reference)


def test_outputs_a_catalogue_did_not_make_are_kept_without_overwrite(catalogue, small_model_dir, tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "bass.wav").write_bytes(b"someone else's file")
    results = run_catalogue([(catalogue / "a.flac", out)], out, _settings(small_model_dir))
    assert results[0].status == "failed" and "already exists" in results[0].error
    assert (out / "a" / "bass.wav").read_bytes() == b"someone else's file"
    assert not marker_path([out / "a" / "bass.wav"], catalogue / "a.flac").exists()  # not claimed as partial


def test_ray_local_instance_on_two_cpus_equals_one_process(catalogue, reference, small_model_dir, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'stemstream[ray]')")
    out = tmp_path / "ray"
    results = run_catalogue(expand_inputs([str(catalogue)], out), out, _settings(small_model_dir), jobs=2,
                            ray_address="local")
    assert [r.status for r in results] == ["done"] * 4, [r.error for r in results]
    _same(_outputs(out), reference)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stemstream_cli", "separate", *args]


def _one_done(out: Path) -> bool:
    """Whether a file's manifest says done; the running command creates and removes files meanwhile."""
    try:
        return any('"done"' in m.read_text() for m in out.rglob(".*.stemstream.json"))
    except FileNotFoundError:  # a temporary folder or manifest vanished while we looked: look again
        return False


def test_a_killed_command_line_run_resumes(catalogue, reference, small_model_dir, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = _cli(str(catalogue), "--out", str(out), "--model", str(small_model_dir), "--jobs", "1")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # SIGKILL once the first file is complete
        if _one_done(out):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
    stems = StemSeparator(str(small_model_dir)).stems
    planned = {p: planned_outputs(p, o, stems, "wav", False) for p, o in expand_inputs([str(catalogue)], out)}
    complete = {p for p, outs in planned.items() if file_state(p, outs, _settings(small_model_dir)) == "complete"}
    assert 1 <= len(complete) < 4
    mtimes = {p: [f.stat().st_mtime_ns for f in planned[p]] for p in complete}
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    skipped = {Path(line.split("] ", 1)[1].split(" -> ")[0]) for line in again.stdout.splitlines()
               if "complete, skipped" in line}
    assert skipped == complete
    for p in complete:  # not rewritten
        assert [f.stat().st_mtime_ns for f in planned[p]] == mtimes[p]
    assert not list(out.rglob(".stemstream-partial-*"))  # the killed worker's temporary folder is gone
    _same(_outputs(out), reference)
