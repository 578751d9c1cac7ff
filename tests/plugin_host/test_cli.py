"""``stemstream separate`` on real files: outputs, stem files, chains, failures, never overwriting inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import model
from plugin_host import StemSeparator
from model.audio_io import read_audio
from plugin_host.audio_io import write_audio
from plugin_host.ni_stems import read_stem_file_info
from stemstream_cli import build_parser, main
from tests.plugin_host.helpers import noise

RATE = 44100


@pytest.fixture
def song(tmp_path):
    path = write_audio(tmp_path / "in" / "song.flac", noise(2, RATE // 2, seed=1), RATE)
    return path, read_audio(path).samples


def test_separate_writes_one_file_per_stem_equal_to_the_processor(song, small_model_dir, tmp_path, capsys):
    path, audio = song
    out = tmp_path / "out"
    assert main(["separate", str(path), "--model", str(small_model_dir), "--out", str(out), "--quiet"]) == 0
    expected = StemSeparator(str(small_model_dir)).separate(audio, RATE)
    for stem, reference in expected.items():
        written = read_audio(out / "song" / f"{stem}.wav")
        assert written.sample_rate_hz == RATE
        assert np.abs(written.samples - np.clip(reference, -1, 1)).max() < 2 ** -20  # 24-bit wav
    assert "song.flac ->" in capsys.readouterr().out


def test_failure_on_one_input_leaves_the_others_done(song, small_model_dir, tmp_path, capsys):
    path, _ = song
    other = write_audio(tmp_path / "in" / "other.wav", noise(1, 5000, seed=2), 22050)
    broken = tmp_path / "in" / "broken.wav"
    broken.write_text("not audio")
    out = tmp_path / "out"
    code = main(["separate", str(path), str(broken), str(other), "--model", str(small_model_dir),
                 "--stems", "bass,drums", "--out", str(out), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"FAILED {broken}" in err and "1 of 3 input(s) failed" in err
    assert sorted(p.name for p in (out / "song").iterdir()) == ["bass.wav", "drums.wav"]
    mono = read_audio(out / "other" / "bass.wav")
    assert mono.samples.shape == (1, 5000) and mono.sample_rate_hz == 22050
    assert not (out / "broken").exists()


def test_output_never_overwrites_an_input(small_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    victim = write_audio(out / "bass" / "bass.wav", noise(2, 3000), RATE)  # would be OUT/bass/bass.wav
    before = victim.read_bytes()
    code = main(["separate", str(victim), "--model", str(small_model_dir), "--out", str(out), "--quiet"])
    assert code == 1 and "is an input file, which is never overwritten" in capsys.readouterr().err
    assert victim.read_bytes() == before and sorted(p.name for p in (out / "bass").iterdir()) == ["bass.wav"]


def test_same_named_inputs_do_not_overwrite_each_other(small_model_dir, tmp_path, capsys):
    a = write_audio(tmp_path / "a" / "take.wav", noise(1, 2000), RATE)
    b = write_audio(tmp_path / "b" / "take.wav", noise(1, 2000, seed=3), RATE)
    code = main(["separate", str(a), str(b), "--model", str(small_model_dir), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 1 and "would overwrite the output of" in capsys.readouterr().err


def test_stem_mp4_output_and_stem_mp4_input(small_model_dir, tmp_path):
    t = np.arange(RATE // 2) / RATE
    tonal = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    path = write_audio(tmp_path / "in" / "tune.wav", tonal, RATE)
    out = tmp_path / "out"
    assert main(["separate", str(path), "--model", str(small_model_dir), "--out", str(out),
                 "--format", "stem.mp4", "--quiet"]) == 0
    stem_path = out / "tune.stem.mp4"
    info = read_stem_file_info(stem_path)
    assert info.names == ("bass", "drums", "guitar", "piano")
    assert info.stream_titles == ("mixture", "bass", "drums", "guitar", "piano")
    mixture = read_audio(stem_path)  # stream 0 is the input mixture
    assert mixture.samples.shape == tonal.shape
    assert np.sum((mixture.samples - tonal) ** 2) < 0.01 * np.sum(tonal ** 2)
    # the stem file is itself a valid input: its mixture is separated
    assert main(["separate", str(stem_path), "--model", str(small_model_dir), "--out", str(tmp_path / "again"),
                 "--stems", "piano", "--format", "flac", "--quiet"]) == 0
    assert read_audio(tmp_path / "again" / "tune" / "piano.flac").samples.shape == tonal.shape


def test_chain_file_processes_stems_and_mix(song, small_model_dir, tmp_path):
    path, audio = song
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"stems": {"drums": [{"plugin": "Gain", "gain_db": -6.0}]},
                                      "mix": [{"plugin": "Gain", "gain_db": -20.0}]}))
    out = tmp_path / "out"
    assert main(["separate", str(path), "--model", str(small_model_dir), "--out", str(out), "--stems", "bass,drums",
                 "--chain", str(chain_file), "--quiet"]) == 0
    stems = StemSeparator(str(small_model_dir)).separate(audio, RATE)
    drums = 10 ** (-6 / 20) * stems["drums"]
    assert np.abs(read_audio(out / "song" / "drums.wav").samples - drums).max() < 1e-5
    assert np.abs(read_audio(out / "song" / "bass.wav").samples - stems["bass"]).max() < 1e-5
    mix = 0.1 * (drums + stems["bass"])
    assert np.abs(read_audio(out / "song" / "mix.wav").samples - mix).max() < 1e-5


@pytest.mark.parametrize("args,message", [
    (["--format", "stem.mp4", "--stems", "bass,drums,piano"], "exactly 4 stems"),
    (["--stems", "vox"], "no stem 'vox'"),
    (["--chain", "MISSING.yaml"], "--chain MISSING.yaml: no such file"),
])
def test_argument_errors_exit_2_with_a_message(song, small_model_dir, tmp_path, capsys, args, message):
    path, _ = song
    assert main(["separate", str(path), "--model", str(small_model_dir), "--out", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_defaults_are_the_readme_command():
    args = build_parser().parse_args(["separate", "examples/demo.flac", "--out", "separated/"])
    assert (args.model, args.stems, args.format, args.chain) == (model.DEFAULT_MODEL, None, "wav", None)
    assert args.inputs == ["examples/demo.flac"] and args.out == "separated/"
