"""Readers on real files: the shared MUSDB18 previews, hand-made Slakh2100 folders, plain folders."""
from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from model.audio_io import read_audio
from model.training.data import MUSDB_STEMS, SLAKH_STEMS, Track, list_tracks, read_folder, read_slakh, read_track, read_tracks
from model.training.data.cache import cached_track
from tests.helpers import MUSDB_TRAIN


def _sine(freq_hz: float, sample_rate_hz: int, seconds: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    return np.stack([0.5 * np.sin(2 * np.pi * freq_hz * t + c) for c in range(channels)]).astype(np.float32)


@pytest.mark.skipif(not MUSDB_TRAIN.is_dir(), reason="shared MUSDB18 previews not present")
def test_musdb_through_read_tracks_stems_sum_to_the_mixture():
    names = ["ANiMAL - Clinic A"]
    (track,) = list(read_tracks(MUSDB_TRAIN, "musdb", 22050, 2, names=names))
    assert track.name == names[0] and track.sample_rate_hz == 22050
    assert set(track.stems) == set(MUSDB_STEMS)
    assert track.mixture.shape[0] == 2 and 6.5 * 22050 < track.num_samples < 7.5 * 22050
    residual = track.mixture - sum(track.stems.values())  # separately AAC-coded stems: ~30 dB apart
    assert 10 * np.log10((track.mixture ** 2).sum() / (residual ** 2).sum()) > 20
    assert len(list_tracks(MUSDB_TRAIN, "musdb", limit=3)) == 3


def _write_slakh(directory: Path, sample_rate_hz: int) -> dict[str, np.ndarray]:
    """A Slakh2100-style track with known stems: two pianos, a kit marked only by is_drum, an
    organ (mixture only) and a guitar whose audio was never rendered (no file)."""
    stems_meta = {
        "S00": {"inst_class": "Drums", "is_drum": True, "audio_rendered": True, "program_num": 0},
        "S01": {"inst_class": "Bass", "is_drum": False, "audio_rendered": True, "program_num": 33},
        "S02": {"inst_class": "Guitar", "is_drum": False, "audio_rendered": False, "program_num": 25},
        "S03": {"inst_class": "Organ", "is_drum": False, "audio_rendered": True, "program_num": 16},
        "S04": {"inst_class": "Piano", "is_drum": False, "audio_rendered": True, "program_num": 0},
        "S05": {"inst_class": "Piano", "is_drum": False, "audio_rendered": True, "program_num": 4},
        "S06": {"inst_class": "Percussive", "is_drum": True, "audio_rendered": True, "program_num": 0},
    }
    freqs = {"S00": 100.0, "S01": 55.0, "S03": 300.0, "S04": 440.0, "S05": 660.0, "S06": 2000.0}
    (directory / "stems").mkdir(parents=True)
    audio = {k: _sine(f, sample_rate_hz, 2.0) * 0.3 for k, f in freqs.items()}
    for key, a in audio.items():
        soundfile.write(directory / "stems" / f"{key}.flac", a.T, sample_rate_hz, subtype="PCM_24")
    soundfile.write(directory / "mix.flac", sum(audio.values()).T, sample_rate_hz, subtype="PCM_24")
    (directory / "metadata.yaml").write_text(yaml.safe_dump({"audio_dir": "stems", "stems": stems_meta}))
    return audio


def test_slakh_groups_stems_by_class_and_leaves_the_rest_in_the_mixture(tmp_path):
    audio = _write_slakh(tmp_path / "Track00007", 44100)
    track = read_slakh(tmp_path / "Track00007", 44100, channels=2)
    assert track.name == "Track00007" and tuple(track.stems) == SLAKH_STEMS
    np.testing.assert_allclose(track.stems["drums"], audio["S00"] + audio["S06"], atol=1e-6)
    np.testing.assert_allclose(track.stems["bass"], audio["S01"], atol=1e-6)
    np.testing.assert_allclose(track.stems["piano"], audio["S04"] + audio["S05"], atol=1e-6)
    assert not track.stems["guitar"].any()  # audio_rendered: false -> silence, file not needed
    np.testing.assert_allclose(track.mixture - sum(track.stems.values()), audio["S03"], atol=1e-5)


def test_slakh_resamples_and_downmixes(tmp_path):
    _write_slakh(tmp_path / "Track00001", 44100)
    track = next(read_tracks(tmp_path, "slakh", 22050, 1))
    assert track.mixture.shape == (1, 44100) and track.stems["bass"].shape == (1, 44100)
    expected = _sine(55.0, 22050, 2.0).mean(0) * 0.3  # mono average of the two phases, at 22.05 kHz
    np.testing.assert_allclose(track.stems["bass"][0, 500:-500], expected[500:-500], atol=2e-3)


def test_folder_reader_names_stems_after_files_and_resamples(tmp_path):
    d = tmp_path / "song"
    d.mkdir()
    drums, bass = _sine(220.0, 44100, 1.0), _sine(110.0, 44100, 1.0)
    soundfile.write(d / "mixture.wav", (drums + bass).T, 44100, subtype="FLOAT")
    soundfile.write(d / "drums.wav", drums.T, 44100, subtype="FLOAT")
    soundfile.write(d / "bass.flac", bass[:, :-10].T, 44100, subtype="PCM_24")  # 10 samples shorter
    (d / "notes.txt").write_text("not audio: ignored")
    track = next(read_tracks(tmp_path, "folder", 22050, 2))
    assert track.name == "song" and set(track.stems) == {"drums", "bass"}
    assert track.mixture.shape == track.stems["bass"].shape == (2, 22045)
    np.testing.assert_allclose(track.stems["drums"][:, 300:-300], _sine(220.0, 22050, 1.0)[:, 300:22045 - 300],
                               atol=2e-3)
    mono = read_folder(d, 44100, channels=1)
    np.testing.assert_allclose(mono.mixture[0], (drums + bass).mean(0)[:-10], atol=1e-6)


def test_read_track_cache_returns_the_same_track(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMSTREAM_CACHE", str(tmp_path / "cache"))
    _write_slakh(tmp_path / "data" / "Track00001", 22050)
    path = list_tracks(tmp_path / "data", "slakh")[0]
    first = read_track(path, "slakh", 22050, 2, cache=True)
    assert len(list((tmp_path / "cache" / "tracks").glob("*.npz"))) == 1
    second = read_track(path, "slakh", 22050, 2, cache=True)
    assert second.name == "Track00001"
    for name in SLAKH_STEMS:
        np.testing.assert_allclose(second.stems[name], first.stems[name], atol=1e-3)  # float16 on disk


_BARRIER = None  # set before forking: the decoders of test_processes_caching_one_track_at_once meet here


def _decode_together(source: Path, sample_rate_hz: int, channels: int) -> Track:
    """A decoder that returns only when every process has decoded, so all of them write at once."""
    _BARRIER.wait(timeout=60)
    noise = np.random.default_rng(0).standard_normal((channels, 4 * sample_rate_hz)).astype(np.float32)
    return Track(source.name, noise, {"drums": noise}, sample_rate_hz)


def _cache_once(source: str) -> str:
    return cached_track(Path(source), 44100, 2, _decode_together).name


def test_processes_caching_one_track_at_once_all_succeed(tmp_path, monkeypatch):
    """Concurrent runs (and DDP ranks) decode the same songs at the same time: each must get its
    track and leave one readable cache file, whatever the order of their writes."""
    global _BARRIER
    monkeypatch.setenv("STEMSTREAM_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "song.wav"
    source.write_bytes(b"only its name, size and time key the cache")
    ctx = multiprocessing.get_context("fork")
    for _ in range(5):
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        _BARRIER = ctx.Barrier(4)
        with ctx.Pool(4) as pool:
            assert pool.map(_cache_once, [str(source)] * 4) == ["song.wav"] * 4
        assert [p.name for p in (tmp_path / "cache" / "tracks").iterdir()] == [
            f"song.wav-{source.stat().st_size}-{int(source.stat().st_mtime)}-44100-2.npz"]
        assert cached_track(source, 44100, 2, _decode_together).stems["drums"].shape == (2, 4 * 44100)


def test_clear_errors_for_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown data format 'wav'"):
        list_tracks(tmp_path, "wav")
    with pytest.raises(FileNotFoundError, match="no Slakh tracks"):
        list_tracks(tmp_path, "slakh")
    with pytest.raises(FileNotFoundError, match="mixture.wav"):
        list_tracks(tmp_path, "folder")
    _write_slakh(tmp_path / "Track00001", 22050)
    with pytest.raises(ValueError, match=r"no track\(s\) \['Track09999'\]"):
        list_tracks(tmp_path, "slakh", names=["Track09999"])
    (tmp_path / "Track00002").mkdir()
    (tmp_path / "Track00002" / "metadata.yaml").write_text("just a string")
    with pytest.raises(ValueError, match="no 'stems' mapping"):
        read_slakh(tmp_path / "Track00002", 22050)
    soundfile.write(tmp_path / "three.wav", np.zeros((100, 3), np.float32), 22050)
    with pytest.raises(ValueError, match="cannot turn 3 channels into 2"):
        read_audio(tmp_path / "three.wav", 22050, 2)
    (tmp_path / "junk.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match="cannot decode"):
        read_audio(tmp_path / "junk.wav", 22050, 1)
