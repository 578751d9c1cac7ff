"""Bad input to the commands, one parametrized matrix: every case exits with a message naming the
problem and the fix, before any work where it can, and never leaves a half-written output.

Damaged files are made the way users get them (a copy cut short, bytes overwritten) from real
encodes of a real signal.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from model.audio_out import TEMP_PREFIX
from stemstream_cli import main
from tests.plugin_host.helpers import noise

RATE = 44100
REPO = Path(__file__).resolve().parents[2]


def tone(seconds: float = 3.0, peak: float = 0.5) -> np.ndarray:
    """``[2, T]`` a chord, the kind of signal encoders keep well."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    return (peak * np.stack([x, np.roll(x, 100)])).astype(np.float32)


def encode(wav: Path, target: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(wav), "-b:a", "128k", str(target)], check=True)
    return target


def cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * fraction)])
    return target


def corrupt(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(1)
    for i in rng.integers(2000, len(data), len(data) // 20):
        data[i] = rng.integers(0, 256)
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every kind of input of the matrix, by name."""
    d = tmp_path_factory.mktemp("inputs")
    good = d / "good.wav"
    soundfile.write(good, tone().T, RATE, subtype="PCM_16")
    flac = d / "good.flac"
    soundfile.write(flac, tone().T, RATE, subtype="PCM_16")
    mp3 = encode(good, d / "good.mp3")
    nan = tone()
    nan[0, 1000], nan[1, 2000], nan[0, 3000] = np.nan, np.inf, -np.inf
    soundfile.write(d / "nan.wav", nan.T, RATE, subtype="FLOAT")
    soundfile.write(d / "loud.wav", (tone(peak=4.0)).T, RATE, subtype="FLOAT")
    soundfile.write(d / "silent0.wav", np.zeros((0, 2), np.float32), RATE)
    (d / "zero_bytes.wav").write_bytes(b"")
    (d / "text.wav").write_text("this is not audio")
    (d / "folder.wav").mkdir()
    return {
        "good": good, "nan": d / "nan.wav", "loud": d / "loud.wav", "no_samples": d / "silent0.wav",
        "zero_bytes": d / "zero_bytes.wav", "text": d / "text.wav", "directory": d / "folder.wav",
        "missing": d / "missing.wav",
        "cut_flac": cut(flac, d / "cut.flac", 0.3), "cut_wav": cut(good, d / "cut.wav", 0.3),
        "cut_mp3": cut(mp3, d / "cut.mp3", 0.3), "corrupt_mp3": corrupt(mp3, d / "corrupt.mp3"),
    }


def leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders of the writers left anywhere under ``folder``."""
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# (input, extra arguments, exit status, text in stderr, whether stems are written)
SEPARATE_CASES = {
    "missing": ("missing", [], 2, "missing.wav: no such file", False),
    "empty directory": ("directory", [], 2, "no audio files in this folder", False),  # a folder is a catalogue
    "zero bytes": ("zero_bytes", [], 2, "is empty (0 bytes)", False),
    "not audio": ("text", [], 1, "cannot decode", False),
    "no samples": ("no_samples", [], 1, "holds no audio samples", False),
    "truncated flac": ("cut_flac", [], 1, "looks damaged: decoded", False),
    "truncated wav": ("cut_wav", [], 1, "looks truncated", False),
    "truncated mp3": ("cut_mp3", [], 1, "looks damaged: decoded", False),
    "corrupt mp3": ("corrupt_mp3", [], 1, "the decoder reported", False),
    "damaged allowed": ("cut_flac", ["--allow-damaged"], 0, "separated the", True),
    "nan and inf": ("nan", [], 0, "3 NaN or infinite input sample(s) were replaced by zeros", True),
    "over range, wav": ("loud", [], 0, "written as 32-bit float wav", True),
    "over range, flac": ("loud", ["--format", "flac"], 1, "pass --normalize", False),
    "over range, normalized": ("loud", ["--normalize"], 0, "to 0 dBFS (--normalize)", True),
    "bad n-q": ("good", ["--n-q", "0"], 2, "--n-q must be a positive", False),
    "empty stems": ("good", ["--stems", ","], 2, "--stems is empty", False),
    "unknown stem": ("good", ["--stems", "vox"], 2, "no stem 'vox'", False),
}


@pytest.mark.parametrize("case", SEPARATE_CASES)
def test_separate_bad_input(case, inputs, small_model_dir, tmp_path, capsys):
    name, extra, status, message, written = SEPARATE_CASES[case]
    out = tmp_path / "out"
    code = main(["separate", str(inputs[name]), "--model", str(small_model_dir), "--out", str(out), "--quiet",
                 *extra])
    err = capsys.readouterr().err
    assert code == status, err
    assert message in err, err
    stems = sorted(out.rglob("*.wav")) + sorted(out.rglob("*.flac"))
    assert bool(stems) == written, stems
    assert not leftovers(tmp_path)
    if written:
        for path in stems:
            audio, _ = soundfile.read(path, dtype="float32")
            assert np.isfinite(audio).all()
        info = soundfile.info(stems[0])
        assert info.subtype == ("FLOAT" if case == "over range, wav" else "PCM_24")
        if case == "over range, normalized":
            assert np.abs(soundfile.read(stems[0])[0]).max() < 1.0


def test_device_choices_are_ours_not_torchs(inputs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["separate", str(inputs["good"]), "--device", "tpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tpu' (choose from 'cpu', 'cuda')" in err and "xla" not in err


def test_out_that_is_a_file_is_refused_before_work(inputs, small_model_dir, tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    assert main(["separate", str(inputs["good"]), "--model", str(small_model_dir), "--out", str(tmp_path / "out")]) == 2
    assert "is a file, not a folder; choose a folder" in capsys.readouterr().err


def test_existing_outputs_are_refused_unless_overwrite(inputs, small_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["separate", str(inputs["good"]), "--model", str(small_model_dir), "--out", str(out), "--quiet",
            "--stems", "bass"]
    assert main(args) == 0
    first = (out / "good" / "bass.wav").read_bytes()
    (out / "good" / "bass.wav").write_bytes(b"mine")
    capsys.readouterr()
    assert main(args) == 1
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert (out / "good" / "bass.wav").read_bytes() == b"mine"
    assert main([*args, "--overwrite"]) == 0
    assert (out / "good" / "bass.wav").read_bytes() == first


def test_one_stem_that_cannot_be_written_leaves_no_stem(inputs, small_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "good" / "drums.wav").mkdir(parents=True)  # the second stem's path is taken by a folder
    assert main(["separate", str(inputs["good"]), "--model", str(small_model_dir), "--out", str(out),
                 "--quiet"]) == 1
    assert "drums.wav is a directory; remove it" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "good").iterdir()) == ["drums.wav"] and not leftovers(tmp_path)


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "stemstream_cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_write_failure_midway_leaves_nothing(inputs, small_model_dir, tmp_path):
    """A real write error (the file-size limit, as on a full disk) after the first blocks."""
    out = tmp_path / "out"

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # each stem is ~800 kB

    proc = _cli(["separate", str(inputs["good"]), "--model", str(small_model_dir), "--out", str(out), "--quiet"],
                preexec_fn=limit_file_size)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "File too large" in err or "Error" in err, err
    assert not list(out.rglob("*.wav")) and not leftovers(tmp_path)


@pytest.mark.parametrize("sig,status,name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupt_midway_stops_cleanly_with_a_summary(small_model_dir, tmp_path, sig, status, name):
    long = tmp_path / "long.wav"
    soundfile.write(long, noise(2, 120 * RATE).T, RATE, subtype="PCM_16")
    second = tmp_path / "second.wav"
    soundfile.write(second, noise(2, RATE).T, RATE, subtype="PCM_16")
    out = tmp_path / "out"
    proc = _cli(["separate", str(long), str(second), "--model", str(small_model_dir), "--out", str(out)])
    deadline = time.monotonic() + 120
    while not any(out.parent.glob(f"{TEMP_PREFIX}*")) and time.monotonic() < deadline:  # writing has begun
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert f"stopped by {name}: 0 input(s) done, 0 failed, 1 interrupted (its partial outputs removed), " \
           "1 not started" in err, err
    assert "Traceback" not in err
    assert not out.exists() or not list(out.rglob("*.wav"))
    assert not leftovers(tmp_path)


# stemstream live --input-file: (arguments, exit status, text in stderr)
LIVE_CASES = {
    "negative prefill": (["--prefill-ms", "-5"], 2, "--prefill-ms must be 0 or more milliseconds, got -5.0"),
    "negative seconds": (["--seconds", "-1"], 2, "--seconds must be a positive number of seconds, got -1.0"),
    "zero threads": (["--torch-threads", "0"], 2, "--torch-threads must be 1 or more"),
    "output in /proc": (["--input-file", "{good}", "--output-file", "/proc/x.wav"], 2,
                        "cannot write /proc/x.wav: cannot create files in /proc"),
    "output is the input": (["--input-file", "{good}", "--output-file", "{good}"], 2, "is an input file"),
    "output format": (["--input-file", "{good}", "--output-file", "{tmp}/o.ogg"], 2, "write a .wav or .flac file"),
    "input missing": (["--input-file", "{tmp}/none.wav", "--output-file", "{tmp}/o.wav"], 2, "none.wav: no such file"),
    "input damaged": (["--input-file", "{cut_flac}", "--output-file", "{tmp}/o.wav"], 2, "looks damaged"),
}


@pytest.mark.parametrize("case", LIVE_CASES)
def test_live_bad_input(case, inputs, small_model_dir, tmp_path, capsys):
    argv, status, message = LIVE_CASES[case]
    names = {k: str(v) for k, v in inputs.items()} | {"tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    assert main(["live", "--model", str(small_model_dir), *argv]) == status
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists() and not leftovers(tmp_path)


def test_live_file_nan_is_zeroed_counted_and_output_not_overwritten(inputs, small_model_dir, tmp_path, capsys):
    out = tmp_path / "o.wav"
    args = ["live", "--model", str(small_model_dir), "--input-file", str(inputs["nan"]), "--output-file", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "3 NaN or infinite input sample(s) were replaced by zeros" in err
    written, _ = soundfile.read(out, dtype="float32")
    assert np.isfinite(written).all() and np.abs(written).max() < 1.0
    assert main(args) == 2 and "already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
