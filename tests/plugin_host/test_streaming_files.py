"""File separation in blocks equals whole-signal processing; outputs appear only complete; latency
getters have no side effects."""
from __future__ import annotations

from unittest import mock

import numpy as np
import soundfile
from pedalboard import Compressor, Delay, Gain, Reverb

from model.audio_io import AudioReader
from plugin_host import Chain, StemSeparator
from plugin_host import chain as chain_module
from plugin_host import separator as separator_module
from plugin_host.batch import SeparateOptions, outputs_complete, planned_outputs, separate_file
from plugin_host.chain_spec import ChainSpec
from tests.plugin_host.helpers import noise

RATE = 44100


def test_blockwise_file_separation_equals_the_whole_signal(small_model_dir, tmp_path):
    """Tiny read blocks (1000 samples), stem chains and a mix chain, against each step run by hand."""
    x = 0.5 * noise(2, 3 * RATE + 123)
    path = tmp_path / "song.wav"
    soundfile.write(path, x.T, RATE, subtype="FLOAT")
    spec = ChainSpec(stems={"drums": Chain([Compressor(threshold_db=-20), Reverb(room_size=0.3)])},
                     mix=Chain([Gain(gain_db=-6), Delay(delay_seconds=0.01, mix=0.5)]))
    sep = StemSeparator(str(small_model_dir), stems=("bass", "drums"))
    outputs = planned_outputs(path, tmp_path / "out", sep.stems, "wav", with_mix=True)
    assert not outputs_complete(outputs)
    progress = []
    report = separate_file(sep, path, outputs, "wav", spec, SeparateOptions(block_samples=1000),
                           progress=lambda phase, done, total: progress.append((phase, done, total)))
    assert outputs_complete(outputs) and report.outputs == outputs and not report.warnings
    assert progress[-1] == ("separating", x.shape[1] / RATE, x.shape[1] / RATE)
    assert any(p[0] == "checking" for p in progress)

    stems = StemSeparator(str(small_model_dir)).separate(x, RATE)
    drums = Chain([Compressor(threshold_db=-20), Reverb(room_size=0.3)])(stems["drums"], RATE)
    mix = Chain([Gain(gain_db=-6), Delay(delay_seconds=0.01, mix=0.5)])(stems["bass"] + drums, RATE)
    for out, expected in zip(outputs, [stems["bass"], drums, mix]):
        written, rate = soundfile.read(out, dtype="float32", always_2d=True)
        assert rate == RATE and written.T.shape == x.shape
        assert np.abs(written.T - expected).max() < 2e-5, out.name  # 24-bit quantisation and float rounding


def test_reader_blocks_are_bounded_and_complete(tmp_path):
    x = noise(2, 10_000)
    soundfile.write(tmp_path / "a.wav", x.T, RATE, subtype="FLOAT")
    with AudioReader(tmp_path / "a.wav") as reader:
        blocks = list(reader.blocks(3000))
    assert [b.shape[1] for b in blocks] == [3000, 3000, 3000, 1000]
    assert np.array_equal(np.concatenate(blocks, axis=1), x) and reader.damage() is None


def test_stem_separator_latency_is_computed_once_per_rate(small_model_dir):
    sep = StemSeparator(str(small_model_dir))
    with mock.patch.object(separator_module, "latency_breakdown", wraps=separator_module.latency_breakdown) as spy:
        first = [sep.latency_at(48000) for _ in range(5)]
        assert spy.call_count == 1
        sep.process(noise(2, 1000), 48000)  # a stream computes its own figure as it starts
        calls = spy.call_count
        again = [sep.latency_samples for _ in range(5)]
    assert spy.call_count == calls and len(set(first + again)) == 1  # reading builds no resampler


def test_chain_latency_getter_measures_once_and_never_mid_stream(small_model_dir):
    chain = Chain([Delay(delay_seconds=0.0, mix=0.0), StemSeparator(str(small_model_dir)), Reverb()])
    measure = chain_module._NativeStage.measure_latency
    with mock.patch.object(chain_module._NativeStage, "measure_latency", autospec=True,
                           side_effect=measure) as spy:
        chain(noise(2, 1000), RATE)  # reset=True: nothing measured
        assert spy.call_count == 0
        values = [chain.latency_samples for _ in range(3)]  # measured once, with the last call's block
        assert spy.call_count == 2 and len(set(values)) == 1
        assert {c.args[3] for c in spy.call_args_list} == {1000}
        streamed = [chain.process(noise(2, 512, seed=i), RATE, reset=False) for i in range(3)]
        calls = spy.call_count  # the stream's start measures its native segments
        for _ in range(3):
            assert chain.latency_samples == chain.latency_at(RATE)
        assert spy.call_count == calls  # reading it mid-stream measures (and resets) nothing
        chain.reset()
        chain.latency_samples  # the cache is cleared by reset()
        assert spy.call_count == calls + 2
    # reading the latency mid-stream does not disturb the stream
    reference = Chain([Delay(delay_seconds=0.0, mix=0.0), StemSeparator(str(small_model_dir)), Reverb()])
    expected = [reference.process(noise(2, 512, seed=i), RATE, reset=False) for i in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, expected))
