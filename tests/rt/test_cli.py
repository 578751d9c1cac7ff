"""``stemstream live`` and ``stemstream devices``: file mode, live mode on JACK, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

import model
import stemstream_cli
from rt.engine import Engine
from rt.filedrive import drive
from tests.helpers import small_config
from tests.rt.jack_server import jackd_installed


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small"
    model.save_separator(model.RQVAESeparator(small_config()).eval(), path)
    return path


def test_file_mode_writes_what_the_engine_plays(model_dir, tmp_path, rng):
    audio = (0.2 * rng.standard_normal((2, 8000))).astype(np.float32)
    soundfile.write(tmp_path / "in.wav", audio.T, 44100, subtype="FLOAT")
    code = stemstream_cli.main(["live", "--model", str(model_dir), "--stems", "drums,bass",
                                "--input-file", str(tmp_path / "in.wav"), "--output-file", str(tmp_path / "out.wav")])
    assert code == 0
    written, rate = soundfile.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 44100
    engine = Engine(model.load(str(model_dir)), 44100, 2, 256, stems=["drums", "bass"])
    expected = drive(engine, audio)
    np.testing.assert_allclose(written.T, expected, atol=1e-4)  # the file's 16-bit-free float round trip


@pytest.mark.parametrize("argv,message", [
    (["--stems", "drums,vocals"], "unknown stem(s) vocals; this model's stems are: bass, drums, guitar, piano"),
    (["--input-file", "x.wav"], "--input-file and --output-file go together"),
    (["--input-file", "missing.wav", "--output-file", "o.wav"], "missing.wav: no such file"),
    (["--blocksize", "-1"], "--blocksize must be 0"),
])
def test_bad_arguments_give_one_clear_line(model_dir, argv, message, capsys):
    assert stemstream_cli.main(["live", "--model", str(model_dir), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_is_a_clear_error(capsys, tmp_path):
    assert stemstream_cli.main(["live", "--model", str(tmp_path / "nothing")]) == 2
    assert "cannot load model" in capsys.readouterr().err


@pytest.mark.skipif(not jackd_installed(), reason="jackd (jackd2) is not installed")
def test_live_mode_runs_on_jack_and_stops_cleanly(jack, model_dir, capsys):
    code = stemstream_cli.main(["live", "--model", str(model_dir), "--stems", "bass", "--seconds", "1",
                                "--prefill-ms", "40", "--midi-virtual"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "MIDI: listening on stemstream:midi_in" in err
    assert "live: 2 channel(s) at 48000 Hz, stems bass, latency" in err
    assert "load" in err and "underruns" in err and "stopped:" in err
    assert stemstream_cli.main(["live", "--model", str(model_dir), "--input-device", "no-such-device"]) == 2
    assert "no usable audio device" in capsys.readouterr().err
    assert stemstream_cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "JACK Audio Connection Kit" in out and "MIDI input ports (JACK MIDI):" in out
