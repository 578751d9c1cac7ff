"""``stemstream render``: procedural songs and MIDI files rendered with FluidSynth (TimGM6mb) into
the Slakh2100 layout, read back by the Slakh reader."""
from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
import yaml

from model.training.data import SLAKH_STEMS, list_slakh, read_slakh, read_tracks
from model.training.render.dataset import TEST_SOUNDFONT, render_dataset
from model.training.render.generator import generate_song
from model.training.render.midi import read_parts
from stemstream_cli import main

pytestmark = pytest.mark.skipif(not TEST_SOUNDFONT.is_file(), reason="timgm6mb-soundfont is not installed")
SR = 22050


def _user_midi(path: Path) -> Path:
    """Bass (GM 33), drums (channel 10), strings (GM 48) on three tracks, tempo 100 BPM."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))]))
    for ch, program, notes in ((0, 33, [40, 43, 45, 47]), (9, 0, [36, 38, 36, 38]), (1, 48, [64, 67, 72, 76])):
        tr = mido.MidiTrack([mido.MetaMessage("track_name", name=f"t{ch}"),
                             mido.Message("program_change", channel=ch, program=program)])
        for note in notes * 2:
            tr.append(mido.Message("note_on", channel=ch, note=note, velocity=100, time=0))
            tr.append(mido.Message("note_off", channel=ch, note=note, velocity=0, time=480))
        mid.tracks.append(tr)
    mid.save(str(path))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    midi = _user_midi(out / "user.mid")
    render_dataset(out / "data", 2, 6.0, TEST_SOUNDFONT, [midi], seed=3, sample_rate_hz=SR)
    return out / "data"


def test_writes_the_slakh_layout_with_metadata(rendered):
    tracks = list_slakh(rendered)
    assert [t.name for t in tracks] == ["Track00001", "Track00002", "Track00003"]
    for track in tracks:
        meta = yaml.safe_load((track / "metadata.yaml").read_text())
        assert meta["audio_dir"] == "stems" and meta["sample_rate_hz"] == SR
        assert (track / "mix.flac").is_file() and (track / "all_src.mid").is_file()
        for key, stem in meta["stems"].items():
            assert (track / "stems" / f"{key}.flac").is_file() and (track / "MIDI" / f"{key}.mid").is_file()
            assert stem["audio_rendered"] is True
            assert stem["is_drum"] == (stem["inst_class"] == "Drums")
            assert 0 <= stem["program_num"] < 128


def test_mix_is_exactly_the_sum_of_the_stem_files(rendered):
    for track in list_slakh(rendered):
        mix, rate = soundfile.read(track / "mix.flac", dtype="int16", always_2d=True)
        stems = [soundfile.read(p, dtype="int16", always_2d=True)[0].astype(np.int32)
                 for p in sorted((track / "stems").glob("*.flac"))]
        assert rate == SR and mix.shape == (6 * SR, 2)
        np.testing.assert_array_equal(mix.astype(np.int32), np.sum(stems, axis=0))
        assert np.abs(mix).max() > 1000  # audible, and below full scale (peak -1..-6 dBFS)
        assert np.abs(mix).max() < 32767 * 10 ** (-1 / 20) + 1


def test_user_midi_parts_keep_their_classes_and_reader_leaves_others_in_the_mixture(rendered):
    track = list_slakh(rendered)[-1]
    meta = yaml.safe_load((track / "metadata.yaml").read_text())
    classes = sorted((s["inst_class"], s["program_num"]) for s in meta["stems"].values())
    assert classes == [("Bass", 33), ("Drums", 0), ("Strings (continued)", 48)]
    assert meta["source"]["midi_file"].endswith("user.mid")
    t = read_slakh(track, SR, channels=2)
    assert set(t.stems) == set(SLAKH_STEMS)
    assert not t.stems["guitar"].any() and not t.stems["piano"].any()
    assert np.abs(t.stems["bass"]).max() > 0.01 and np.abs(t.stems["drums"]).max() > 0.01
    strings_key = next(k for k, s in meta["stems"].items() if s["inst_class"].startswith("Strings"))
    strings, _ = soundfile.read(track / "stems" / f"{strings_key}.flac", dtype="float32", always_2d=True)
    # mixture = bass + drums + strings: the strings stay in the mixture only
    residual = t.mixture - t.stems["bass"] - t.stems["drums"]
    np.testing.assert_allclose(residual, strings.T, atol=2e-4)
    # the MIDI file is 8 beats at 100 BPM = 4.8 s; with its 1.5 s release tail it is cut to --seconds 6
    assert t.num_samples == 6 * SR


def test_reader_stems_sum_to_the_mixture_for_songs_with_only_the_four_classes(rendered):
    for t in read_tracks(rendered, "slakh", SR, 1):
        meta = yaml.safe_load((rendered / t.name / "metadata.yaml").read_text())
        if all(s["inst_class"] in ("Bass", "Drums", "Guitar", "Piano") for s in meta["stems"].values()):
            np.testing.assert_allclose(sum(t.stems.values()), t.mixture, atol=2e-4)
        else:
            assert np.abs(sum(t.stems.values()) - t.mixture).max() > 1e-3  # other instruments: mix only


def test_render_is_seeded_and_resumes(tmp_path, rendered):
    report = render_dataset(tmp_path, 1, 6.0, TEST_SOUNDFONT, seed=3, sample_rate_hz=SR)
    assert report.tracks_written == 1
    a, _ = soundfile.read(tmp_path / "Track00001" / "mix.flac", dtype="int16")
    b, _ = soundfile.read(rendered / "Track00001" / "mix.flac", dtype="int16")
    np.testing.assert_array_equal(a, b)
    again = render_dataset(tmp_path, 2, 6.0, TEST_SOUNDFONT, seed=3, sample_rate_hz=SR)
    assert (again.tracks_written, again.tracks_skipped) == (1, 1)
    c, _ = soundfile.read(tmp_path / "Track00002" / "mix.flac", dtype="int16")
    assert c.shape != a.shape or not np.array_equal(a, c)
    # rendered alone (the resumed run's first track) it equals the same track rendered after another
    d, _ = soundfile.read(rendered / "Track00002" / "mix.flac", dtype="int16")
    np.testing.assert_array_equal(c, d)


def test_generator_varies_style_tempo_key_programs_and_sections():
    plans = [generate_song(seed, 30.0) for seed in range(40)]
    assert len({p.style for p, _ in plans}) >= 5
    assert len({p.key for p, _ in plans}) >= 8 and len({p.mode for p, _ in plans}) >= 3
    assert np.ptp([p.tempo_bpm for p, _ in plans]) > 50
    programs = {(part.name, part.program) for _, parts in plans for part in parts if part.name in ("piano", "guitar", "bass")}
    for name, lo in (("piano", 0), ("guitar", 24), ("bass", 32)):
        progs = {p for n, p in programs if n == name}
        assert len(progs) >= 4 and all(lo <= p < lo + 8 for p in progs)
    # instruments enter and leave: some part has a gap of at least 4 s between notes mid-song
    gaps = []
    for _, parts in plans:
        for part in parts:
            onsets = np.array([e.time_s for e in part.events if e.kind == "on"])
            gaps.append(np.diff(onsets).max() if onsets.size > 1 else 0.0)
    assert max(gaps) > 4.0
    # humanised: onsets are off the 16th grid and velocities vary
    plan, parts = plans[0]
    drums = next(p for p in parts if p.is_drum)
    on = [e for e in drums.events if e.kind == "on"]
    grid = 60.0 / plan.tempo_bpm / 4
    assert np.mean([abs(e.time_s / grid - round(e.time_s / grid)) > 0.01 for e in on]) > 0.5
    assert len({e.b for e in on}) > 10


def test_midi_round_trip_keeps_notes_programs_and_times(tmp_path):
    path = _user_midi(tmp_path / "u.mid")
    parts = read_parts(path)
    assert [(p.program, p.is_drum, p.num_notes) for p in parts] == [(33, False, 8), (0, True, 8), (48, False, 8)]
    onsets = [e.time_s for e in parts[0].events if e.kind == "on"]
    np.testing.assert_allclose(onsets, np.arange(8) * 0.6, atol=1e-9)  # 100 BPM: 0.6 s per beat


def test_renders_faster_than_20x_real_time_on_one_core(tmp_path):
    report = render_dataset(tmp_path, 2, 10.0, TEST_SOUNDFONT, seed=11, sample_rate_hz=44100)
    assert report.audio_s == 20.0
    assert report.realtime_factor_cpu > 20, report


def test_cli_render_and_clear_errors(tmp_path, capsys):
    assert main(["render", "--out", str(tmp_path), "--split", "test", "--tracks", "1", "--seconds", "3",
                 "--soundfont", str(TEST_SOUNDFONT), "--sample-rate-hz", str(SR), "--quiet",
                 "--json", str(tmp_path / "bench.json")]) == 0
    assert (tmp_path / "test" / "Track00001" / "metadata.yaml").is_file()
    assert "1 track(s) written" in capsys.readouterr().out
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["audio_s"] == 3.0 and bench["tracks_written"] == 1 and bench["sample_rate_hz"] == SR
    assert 0 < bench["soundfont_load_cpu_s"] < bench["cpu_s"]
    assert bench["realtime_factor_cpu"] == pytest.approx(3.0 / bench["cpu_s"])
    assert main(["render", "--out", str(tmp_path), "--tracks", "1", "--seconds", "3",
                 "--soundfont", str(tmp_path / "missing.sf2")]) == 2
    assert "missing.sf2 does not exist" in capsys.readouterr().err
    assert main(["render", "--out", str(tmp_path), "--tracks", "2"]) == 2
    assert "--seconds" in capsys.readouterr().err
    assert main(["render", "--out", str(tmp_path), "--tracks", "1", "--seconds", "3", "--sample-rate-hz", "100"]) == 2
    assert "8000..96000 Hz, got 100" in capsys.readouterr().err
    midi = _user_midi(tmp_path / "whole.mid")  # without --seconds a MIDI file is rendered whole
    assert main(["render", "--out", str(tmp_path / "m"), "--midi", str(midi), "--soundfont", str(TEST_SOUNDFONT),
                 "--sample-rate-hz", str(SR), "--quiet"]) == 0
    assert read_slakh(tmp_path / "m" / "Track00001", SR).num_samples == int(round((4.8 + 1.5) * SR))
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi at all")
    assert main(["render", "--out", str(tmp_path), "--midi", str(bad), "--soundfont", str(TEST_SOUNDFONT)]) == 2
    assert "bad.mid is not a readable MIDI file" in capsys.readouterr().err
