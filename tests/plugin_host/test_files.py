"""Files: NI stem files written and read back (ffmpeg, ffprobe), audio IO, chain files."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pedalboard
import pytest

from model.audio_io import read_audio
from plugin_host.audio_io import write_audio
from plugin_host.chain_spec import ChainSpecError, builtin_effects, load_chain_spec
from plugin_host.ni_stems import add_udta_box, find_udta_box, read_stem_file, read_stem_file_info, write_stem_file

RATE = 44100
NAMES = ("vocals", "drums", "bass", "other")


def tones(freqs_hz, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """``[2, T]`` sum of sines, left and right at slightly different levels."""
    t = np.arange(int(seconds * rate)) / rate
    mono = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs_hz)
    return np.stack([mono, 0.8 * mono]).astype(np.float32)


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum((estimate - reference) ** 2)))


@pytest.fixture(scope="module")
def stem_file(tmp_path_factory):
    stems = {name: tones([f]) for name, f in zip(NAMES, (440.0, 110.0, 55.0, 880.0))}
    mixture = tones([300.0])  # not the sum: proves which stream is which
    path = write_stem_file(tmp_path_factory.mktemp("stems") / "song.stem.mp4", mixture, stems, RATE)
    return path, mixture, stems


def test_stem_file_reads_back_with_the_same_stems_and_names(stem_file):
    path, mixture, stems = stem_file
    info = read_stem_file_info(path)
    assert info.names == NAMES
    assert info.stream_titles == ("mixture", *NAMES)  # ffprobe's view of the streams
    assert info.codec == "aac" and info.sample_rate_hz == RATE
    assert info.metadata["version"] == 1 and len(info.colors) == 4
    assert all(c.startswith("#") and len(c) == 7 for c in info.colors)
    decoded = read_stem_file(path)
    assert list(decoded) == ["mixture", *NAMES]
    for name, reference in [("mixture", mixture), *stems.items()]:
        audio = decoded[name]
        assert audio.sample_rate_hz == RATE and audio.samples.shape == reference.shape
        assert snr_db(audio.samples, reference) > 25, name  # AAC at 256 kb/s, aligned, right stream


def test_stem_file_mixture_is_what_a_player_and_our_reader_take(stem_file):
    path, mixture, _ = stem_file
    audio = read_audio(path)
    assert snr_db(audio.samples, mixture) > 25


def test_stem_file_needs_four_stems(tmp_path):
    with pytest.raises(ValueError, match="exactly 4 stems"):
        write_stem_file(tmp_path / "x.stem.mp4", tones([100]), {"a": tones([100])}, RATE)


def test_udta_box_added_to_existing_udta_and_refused_before_mdat():
    def box(kind, payload):
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload
    mp4 = box(b"ftyp", b"isom") + box(b"mdat", b"\0" * 16) + box(b"moov", box(b"mvhd", b"x" * 4) + box(b"udta", box(b"free", b"")))
    out = add_udta_box(mp4, b"stem", b'{"a": 1}')
    assert find_udta_box(out, b"stem") == b'{"a": 1}' and find_udta_box(out, b"free") == b""
    assert out[: mp4.index(b"moov") - 4] == mp4[: mp4.index(b"moov") - 4]  # media data untouched
    faststart = box(b"ftyp", b"isom") + box(b"moov", box(b"mvhd", b"")) + box(b"mdat", b"\0")
    with pytest.raises(ValueError, match="precedes mdat"):
        add_udta_box(faststart, b"stem", b"{}")


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_write_and_read_pcm(tmp_path, suffix):
    x = tones([220.0, 3000.0], seconds=0.2, rate=48000)
    path = write_audio(tmp_path / f"a.{suffix}", x, 48000)
    audio = read_audio(path)
    assert audio.sample_rate_hz == 48000 and audio.samples.shape == x.shape
    assert np.abs(audio.samples - x).max() < 2 ** -22  # 24-bit


@pytest.mark.parametrize("ext,codec", [("mp3", "libmp3lame"), ("ogg", "libvorbis")])
def test_read_lossy_formats(tmp_path, ext, codec):
    x = tones([440.0], seconds=0.5)
    wav = write_audio(tmp_path / "a.wav", x, RATE)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(tmp_path / f"a.{ext}")], check=True)
    audio = read_audio(tmp_path / f"a.{ext}")
    assert audio.sample_rate_hz == RATE and audio.samples.shape[0] == 2
    assert x.shape[1] <= audio.samples.shape[1] < x.shape[1] + 4096  # mp3 keeps its encoder padding
    assert 0.15 < np.abs(audio.samples[0]).max() < 0.25 and 0.1 < np.abs(audio.samples[1]).max() < 0.2


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="cannot decode .* as audio"):
        read_audio(tmp_path / "text.wav")


def test_chain_file_yaml_and_json_build_the_same_plugins(tmp_path):
    spec = {"stems": {"drums": [{"plugin": "Compressor", "threshold_db": -18, "ratio": 4}],
                      "vocals": [{"plugin": "Reverb", "room_size": 0.6}, {"plugin": "Gain", "gain_db": -3}]},
            "mix": [{"plugin": "Limiter", "threshold_db": -1}]}
    (tmp_path / "c.json").write_text(json.dumps(spec))
    (tmp_path / "c.yaml").write_text("stems:\n  drums:\n    - {plugin: Compressor, threshold_db: -18, ratio: 4}\n"
                                     "  vocals:\n    - plugin: Reverb\n      room_size: 0.6\n"
                                     "    - {plugin: Gain, gain_db: -3}\nmix:\n  - {plugin: Limiter, threshold_db: -1}\n")
    x = tones([200.0, 1000.0], seconds=0.3)
    for name in ("c.json", "c.yaml"):
        loaded = load_chain_spec(tmp_path / name, NAMES)
        drums = loaded.stems["drums"][0]
        assert isinstance(drums, pedalboard.Compressor) and drums.threshold_db == -18 and drums.ratio == 4
        assert [type(p).__name__ for p in loaded.stems["vocals"]] == ["Reverb", "Gain"]
        expected = pedalboard.Pedalboard([pedalboard.Reverb(room_size=0.6), pedalboard.Gain(gain_db=-3)])(x, RATE)
        assert np.array_equal(loaded.stems["vocals"](x, RATE), expected)
        assert isinstance(loaded.mix[0], pedalboard.Limiter)


BAD_CHAINS = {
    "unknown_plugin": ("mix:\n  - {plugin: Flanger}\n", "unknown plugin 'Flanger'.*Chorus"),
    "unknown_parameter": ("mix:\n  - {plugin: Reverb, size: 2}\n", r"Reverb has no parameter\(s\) \['size'\].*room_size"),
    "bad_value": ("mix:\n  - {plugin: Compressor, ratio: 0.5}\n", "bad value for Compressor"),
    "unknown_stem": ("stems:\n  kazoo:\n    - {plugin: Gain}\n", r"no stem\(s\) \['kazoo'\]"),
    "no_plugin_key": ("mix:\n  - {gain_db: 3}\n", "'plugin'.*'vst3'"),
    "missing_vst3": ("mix:\n  - {vst3: /no/such.vst3}\n", "does not exist"),
    "code_is_not_run": ("mix: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "not valid YAML"),
    "top_level": ("- {plugin: Gain}\n", "top level"),
}


@pytest.mark.parametrize("name", BAD_CHAINS)
def test_bad_chain_files_are_clear_errors(tmp_path, name):
    text, message = BAD_CHAINS[name]
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ChainSpecError, match=message):
        load_chain_spec(tmp_path / "c.yaml", NAMES)


def test_builtin_effects_are_effects_only():
    effects = builtin_effects()
    assert {"Compressor", "Reverb", "Gain", "Limiter", "Chorus"} <= set(effects)
    assert not {"Pedalboard", "Chain", "Mix", "VST3Plugin", "Plugin"} & set(effects)
