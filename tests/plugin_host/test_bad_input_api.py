"""Bad input to the Python API, one parametrized matrix over every entry point, and NaN/inf zeroed and
counted on every path (one test per path): the runtime, StemSeparator, Chain, the live engine in
both modes. (``stemstream separate`` and the file-driven live loop: tests/plugin_host/test_bad_input_cli.py.)
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile
from pedalboard import Gain, Reverb

import model
from model.audio_io import AudioReadError, DamagedAudioError, read_audio
from plugin_host import Chain, StemSeparator
from rt.engine import Engine
from rt.filedrive import drive
from tests.plugin_host.helpers import noise

RATE = 44100


def entry_points(small_net, small_model_dir) -> dict:
    """Each public entry point as ``f(array) -> output``, on fresh objects."""
    runtime = model.StreamingSeparator(small_net)
    sep = StemSeparator(str(small_model_dir))
    chain = Chain([Gain(gain_db=-1.0), StemSeparator(str(small_model_dir))])
    return {
        "StreamingSeparator.process": runtime.process,
        "StreamingSeparator.separate": runtime.separate,
        "StemSeparator.process": lambda x: sep.process(x, RATE),
        "StemSeparator.separate": lambda x: sep.separate(x, RATE),
        "StemSeparator.process_channels_first": lambda x: sep.process_channels_first(x, RATE),
        "Chain.process": lambda x: chain.process(x, RATE),
        "Chain.process_channels_first": lambda x: chain.process_channels_first(x, RATE),
    }


ALL = ("StreamingSeparator.process", "StreamingSeparator.separate", "StemSeparator.process",
       "StemSeparator.separate", "StemSeparator.process_channels_first", "Chain.process",
       "Chain.process_channels_first")
CHANNELS_FIRST_ONLY = ("StreamingSeparator.process", "StreamingSeparator.separate",
                       "StemSeparator.process_channels_first", "Chain.process_channels_first")

# (array, entry points that refuse it, error type, message)
BAD_ARRAYS = {
    "int16": (np.zeros((2, 4410), np.int16), ALL, TypeError, r"float"),
    "3-D": (np.zeros((2, 2, 4410), np.float32), ALL, ValueError, r"2-D|3-D"),
    "[T, C] soundfile layout": (np.zeros((4410, 2), np.float32), CHANNELS_FIRST_ONLY, ValueError,
                                r"looks like \[samples, channels\].*pass x\.T"),
    "[T, C] long": (np.zeros((88200, 2), np.float32), CHANNELS_FIRST_ONLY, ValueError, r"pass x\.T"),
    "1-D": (np.zeros(4410, np.float32), CHANNELS_FIRST_ONLY, ValueError, r"\[None, :\] for mono"),
}


@pytest.mark.parametrize("case", BAD_ARRAYS)
@pytest.mark.parametrize("entry", ALL)
def test_bad_arrays(case, entry, small_net, small_model_dir):
    array, refusing, error, message = BAD_ARRAYS[case]
    call = entry_points(small_net, small_model_dir)[entry]
    if entry in refusing:
        with pytest.raises(error, match=message):
            call(array)
    else:  # pedalboard's convention: the smaller dimension is channels, so [T, C] is read right
        out = call(array)
        out = out["bass"] if isinstance(out, dict) else out
        assert out.shape == array.shape


def test_channels_last_is_read_as_pedalboard_reads_it(separator):
    x = noise(2, 3000)
    assert np.array_equal(separator.process(x.T.copy(), RATE), separator.process(x, RATE).T)


def with_nonfinite(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with a NaN, +inf and -inf, and the same with zeros there."""
    bad, clean = x.copy(), x.copy()
    for (c, t), v in zip([(0, 100), (1, 2000), (0, 3000)], [np.nan, np.inf, -np.inf]):
        bad[c, t], clean[c, t] = v, 0.0
    return bad, clean


def test_runtime_zeroes_and_counts(small_net):
    bad, clean = with_nonfinite(noise(2, 4410))
    runtime = model.StreamingSeparator(small_net)
    out = runtime.separate(bad)
    assert runtime.nonfinite_samples == 3 and np.array_equal(out, runtime.separate(clean))
    runtime.reset()
    assert np.array_equal(runtime.process(bad), model.StreamingSeparator(small_net).process(clean))
    assert runtime.nonfinite_samples == 3


@pytest.mark.parametrize("call", ["process", "separate", "stream"])
def test_stem_separator_zeroes_and_counts(small_model_dir, call):
    bad, clean = with_nonfinite(noise(2, 4410))
    sep, ref = StemSeparator(str(small_model_dir)), StemSeparator(str(small_model_dir))
    with pytest.warns(RuntimeWarning, match="3 NaN or infinite input sample"):
        if call == "process":
            out, expected = sep.process(bad, RATE), ref.process(clean, RATE)
        elif call == "separate":
            out, expected = sep.separate(bad, RATE)["bass"], ref.separate(clean, RATE)["bass"]
        else:
            out = sep.process(bad, RATE, reset=False)
            expected = ref.process(clean, RATE, reset=False)
    assert np.isfinite(out).all() and np.array_equal(out, expected)
    assert sep.nonfinite_samples == 3
    sep.reset()
    assert sep.nonfinite_samples == 0


def test_chain_zeroes_and_counts(small_model_dir):
    bad, clean = with_nonfinite(noise(2, 4410))
    chain = Chain([Gain(gain_db=-2.0), StemSeparator(str(small_model_dir)), Reverb()])
    reference = Chain([Gain(gain_db=-2.0), StemSeparator(str(small_model_dir)), Reverb()])
    with pytest.warns(RuntimeWarning, match="Chain.nonfinite_samples"):
        out = chain(bad, RATE)
    assert np.isfinite(out).all() and np.array_equal(out, reference(clean, RATE))
    assert chain.nonfinite_samples == 3


@pytest.mark.parametrize("mode", ["callback", "worker"])
def test_live_engine_zeroes_and_counts(small_net, mode):
    bad, clean = with_nonfinite(noise(2, RATE // 2))
    out_bad, out_clean = [], []
    for x, outs in ((bad, out_bad), (clean, out_clean)):
        engine = Engine(model.StreamingSeparator(small_net), RATE, 2, 256, mode=mode)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing non-finite reaches the mixer
            outs.append(drive(engine, x))
        outs.append(engine.stats().nonfinite_samples)
        engine.close()
    assert np.isfinite(out_bad[0]).all() and np.array_equal(out_bad[0], out_clean[0])
    assert (out_bad[1], out_clean[1]) == (3, 0)


def test_file_reading_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_audio(tmp_path / "none.wav")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_audio(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioReadError, match=r"is empty \(0 bytes\)"):
        read_audio(tmp_path / "empty.wav")
    x = 0.3 * noise(2, RATE)
    soundfile.write(tmp_path / "a.flac", x.T, RATE, subtype="PCM_16")
    data = (tmp_path / "a.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:len(data) // 3])
    with pytest.raises(DamagedAudioError, match=r"looks damaged: decoded .* of the 1.00 s its header declares.*"
                                                r"--allow-damaged"):
        read_audio(tmp_path / "cut.flac")
    with pytest.warns(RuntimeWarning, match="looks damaged"):
        partial = read_audio(tmp_path / "cut.flac", allow_damaged=True)
    assert 0 < partial.samples.shape[1] < RATE
    assert np.abs(partial.samples - x[:, :partial.samples.shape[1]]).max() < 1e-4  # what decoded is right
