"""``stemstream eval``: JSON schema, the mixture baseline, streaming equivalence, stem matching."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import model
from model.training.data import read_tracks
from model.training.evaluate import _run_offline, evaluate
from model.training.metrics import windowed_si_sdri
from model.training.oracle import oracle_stems
from model.training.render.dataset import TEST_SOUNDFONT, render_dataset
from stemstream_cli import main
from tests.helpers import MUSDB_TRAIN, small_config

pytestmark = pytest.mark.skipif(not TEST_SOUNDFONT.is_file(), reason="timgm6mb-soundfont is not installed")
SR = 22050


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaldata")
    render_dataset(out, 2, 6.0, TEST_SOUNDFONT, seed=29, sample_rate_hz=SR)  # all 4 stems in both
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    return model.save_separator(net, tmp_path_factory.mktemp("tiny"))


def _run(args: list[str], out: Path) -> object:
    assert main(["eval", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_json_schema_and_mixture_baseline_side_by_side(data, tiny_model, tmp_path, capsys):
    result = _run(["--model", str(tiny_model), "mixture", "--data", str(data), "--format", "slakh", "--no-sdr",
                   "--channels", "1"], tmp_path / "r.json")
    assert isinstance(result, list) and len(result) == 2
    ours, mix = result
    for r in result:
        assert {"model", "tracks", "stems", "mean_si_sdri_db"} <= set(r)
        assert r["tracks"] == 2 and set(r["stems"]) == {"bass", "drums", "guitar", "piano"}
        assert r["audio_s"] == pytest.approx(12.0) and r["wall_s"] > 0 and r["sample_rate_hz"] == SR
        for score in r["stems"].values():
            assert set(score) == {"si_sdri_db", "sdr_db", "windows", "si_sdri_fullband_db"}
            assert score["si_sdri_fullband_db"] == score["si_sdri_db"]  # a 22.05 kHz model: the same band
            assert score["sdr_db"] is None and isinstance(score["windows"], int) and score["windows"] > 0
        finite = [s["si_sdri_db"] for s in r["stems"].values() if s["si_sdri_db"] is not None]
        assert r["mean_si_sdri_db"] == pytest.approx(np.mean(finite), abs=1e-3)
    assert ours["model"] == str(tiny_model) and mix["model"] == "mixture"
    assert all(s["si_sdri_db"] == 0.0 for s in mix["stems"].values())  # the mixture scores 0 dB
    assert {k: v["windows"] for k, v in ours["stems"].items()} == {k: v["windows"] for k, v in mix["stems"].items()}
    table = capsys.readouterr().out
    assert "mixture" in table and "SI-SDRi" in table and "mean" in table


def test_scores_equal_a_block_by_block_streaming_run(data, tiny_model):
    result = evaluate(str(tiny_model), data, "slakh", limit=1, sdr=False, channels=1)
    sep = model.load(tiny_model)
    per_stem: dict[str, list[np.ndarray]] = {s: [] for s in sep.stems}
    for track in read_tracks(data, "slakh", SR, 1, limit=1):
        sep.reset()
        x = np.concatenate([track.mixture, np.zeros((1, sep.latency_samples), np.float32)], axis=1)
        out = np.concatenate([sep.process(x[:, i:i + 3000]) for i in range(0, x.shape[1], 3000)], axis=2)
        est = out[:, 0, sep.latency_samples:]  # undo the streaming delay
        refs = np.stack([track.stems[s][0] for s in sep.stems])
        scores = windowed_si_sdri(est, refs, track.mixture[0], SR)
        for j, s in enumerate(sep.stems):
            per_stem[s].append(scores[:, j])
    for s in sep.stems:
        values = np.concatenate(per_stem[s])
        assert result.stems[s].windows == int(np.isfinite(values).sum())
        assert result.stems[s].si_sdri_db == pytest.approx(float(np.nanmean(values)), abs=1e-3)


def test_offline_path_is_aligned_like_the_stream_and_non_causal_models_are_scored(data, tiny_model, tmp_path):
    track = next(read_tracks(data, "slakh", SR, 1, limit=1))
    mixture = track.mixture[:, : 2 * SR]
    net = model.load_separator(tiny_model)
    streamed = model.StreamingSeparator(net).separate(mixture)
    np.testing.assert_allclose(_run_offline(net, mixture), streamed, atol=1e-4)
    torch.manual_seed(3)
    bidirectional = model.RQVAESeparator(small_config(causal=False, temporal="bilstm")).eval()
    path = model.save_separator(bidirectional, tmp_path / "noncausal")
    result = evaluate(str(path), data, "slakh", limit=1, sdr=False, channels=1)
    assert set(result.stems) == {"bass", "drums", "guitar", "piano"}
    assert all(math.isfinite(s.si_sdri_db) and s.windows > 0 for s in result.stems.values())


def test_n_q_scores_the_model_with_its_first_quantizers(data, tiny_model, tmp_path, capsys):
    net = model.load_separator(tiny_model)
    assert net.config.n_q >= 2
    track = next(read_tracks(data, "slakh", SR, 1, limit=1))
    one = _run(["--model", str(tiny_model), "--data", str(data), "--format", "slakh", "--no-sdr", "--channels", "1",
                "--limit", "1", "--n-q", "1"], tmp_path / "one.json")
    every = _run(["--model", str(tiny_model), "--data", str(data), "--format", "slakh", "--no-sdr", "--channels", "1",
                  "--limit", "1"], tmp_path / "all.json")
    assert one["n_q"] == 1 and every["n_q"] == net.config.n_q
    est = model.StreamingSeparator(net, n_q=1).separate(track.mixture)[:, 0]  # [S, T]
    refs = np.stack([track.stems[s][0] for s in net.config.stems])
    expected = np.nanmean(windowed_si_sdri(est, refs, track.mixture[0], SR), axis=0)
    for j, stem in enumerate(net.config.stems):
        assert one["stems"][stem]["si_sdri_db"] == pytest.approx(float(expected[j]), abs=1e-3)
    assert one["stems"] != every["stems"]  # fewer quantizers, another separation
    assert main(["eval", "--model", str(tiny_model), "--data", str(data), "--format", "slakh", "--no-sdr",
                 "--n-q", str(net.config.n_q + 1)]) == 2
    assert f"n_q must be between 1 and {net.config.n_q}" in capsys.readouterr().err


def test_museval_sdr_and_only_common_stems(data, tmp_path):
    torch.manual_seed(1)
    net = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other"))).eval()
    path = model.save_separator(net, tmp_path / "musdb-like")
    result = evaluate(str(path), data, "slakh", limit=1, sdr=True, channels=1)
    assert set(result.stems) == {"drums", "bass"}  # guitar and piano stay in the mixture
    assert result.tracks == 1 and result.track_names == ["Track00001"]
    for score in result.stems.values():
        assert score.sdr_db is not None and math.isfinite(score.sdr_db)


def test_clear_errors(data, tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "nope"), "--data", str(data), "--format", "slakh"]) == 2
    assert "no model" in capsys.readouterr().err
    torch.manual_seed(2)
    net = model.RQVAESeparator(small_config(stems=("vocals", "other"))).eval()
    path = model.save_separator(net, tmp_path / "vocals")
    assert main(["eval", "--model", str(path), "--data", str(data), "--format", "slakh", "--no-sdr",
                 "--limit", "1"]) == 2
    assert "no stem in common" in capsys.readouterr().err
    assert main(["eval", "--model", "mixture", "--data", str(data), "--format", "musdb"]) == 2
    assert "no *.stem.mp4 files" in capsys.readouterr().err
    assert main(["eval", "--model", "mixture", "--data", str(data), "--format", "slakh", "--limit", "0"]) == 2
    assert capsys.readouterr().err == "stemstream eval: error: --limit must be 1 or more tracks, got 0\n"


@pytest.fixture(scope="module")
def no_guitar(data, tmp_path_factory) -> Path:
    """One rendered song as a folder track whose guitar stem is digital silence."""
    import soundfile

    track = next(read_tracks(data, "slakh", SR, 1, limit=1))
    out = tmp_path_factory.mktemp("noguitar") / "song"
    out.mkdir()
    stems = {**{s: track.stems[s][0] for s in ("bass", "drums", "piano")}, "guitar": np.zeros(track.num_samples)}
    for name, signal in stems.items():
        soundfile.write(out / f"{name}.wav", signal, SR, subtype="FLOAT")
    soundfile.write(out / "mixture.wav", sum(stems.values()), SR, subtype="FLOAT")
    return out


def test_a_stem_silent_in_every_window_is_absent_never_nan(no_guitar, tiny_model, tmp_path, capsys):
    result = _run(["--model", str(tiny_model), "--data", str(no_guitar), "--format", "folder", "--no-sdr",
                   "--channels", "1"], tmp_path / "r.json")
    assert result["absent_stems"] == ["guitar"]
    assert set(result["stems"]) == {"bass", "drums", "piano"}
    assert all(math.isfinite(s["si_sdri_db"]) and s["windows"] > 0 for s in result["stems"].values())
    assert result["mean_si_sdri_db"] == pytest.approx(np.mean([s["si_sdri_db"] for s in result["stems"].values()]),
                                                      abs=1e-3)
    table = capsys.readouterr().out
    guitar_row = next(line for line in table.splitlines() if line.startswith("guitar"))
    assert "absent" in guitar_row and "nan" not in table.lower()


def test_validation_reports_a_silent_stem_as_absent(no_guitar, tiny_model):
    from model.training.data.folder import read_folder
    from model.training.train import format_validation, validate

    net = model.load_separator(tiny_model)
    scores = validate(net, [read_folder(no_guitar, SR, 1)])
    assert set(scores) == {"bass", "drums", "piano", "mean"}
    assert all(math.isfinite(v) for v in scores.values())
    assert scores["mean"] == pytest.approx(np.mean([scores[s] for s in ("bass", "drums", "piano")]))
    assert "guitar absent (silent)" in format_validation(scores, net.config.stems)


def test_side_by_side_means_are_over_the_stems_every_model_scored(data, tiny_model, tmp_path):
    from model.training.evaluate import common_stems, format_table

    torch.manual_seed(4)
    net = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other"))).eval()
    musdb_like = model.save_separator(net, tmp_path / "musdb-like")
    slakh, musdb = (evaluate(str(m), data, "slakh", limit=1, sdr=False, channels=1) for m in (tiny_model, musdb_like))
    assert set(slakh.stems) == {"bass", "drums", "guitar", "piano"} and set(musdb.stems) == {"drums", "bass"}
    assert common_stems([slakh, musdb]) == ["bass", "drums"]
    lines = format_table([slakh, musdb]).splitlines()
    mean_row = next(line for line in lines if line.startswith("mean"))
    expected = [np.mean([r.stems[s].si_sdri_db for s in ("bass", "drums")]) for r in (slakh, musdb)]
    assert mean_row.startswith("mean*") and [f"{x:.2f}" for x in expected] == mean_row.split()[2::2]
    assert f"{slakh.mean_si_sdri_db:.2f}" != f"{expected[0]:.2f}"  # the 4-stem mean would be another number
    assert "* mean over bass, drums: the stems every model scored" in lines
    same = format_table([slakh, evaluate("mixture", data, "slakh", limit=1, sdr=False, channels=1)])
    assert "mean*" not in same and "every model scored" not in same  # same stems: the plain means


@pytest.mark.skipif(not MUSDB_TRAIN.is_dir(), reason="the MUSDB18 previews (../shared/data) are absent")
def test_a_44k_model_is_scored_at_the_papers_rate_and_over_its_whole_band(tmp_path):
    from scipy.signal import resample_poly

    song = sorted(p.name[: -len(".stem.mp4")] for p in MUSDB_TRAIN.glob("*.stem.mp4"))[0]
    torch.manual_seed(4)
    net = model.RQVAESeparator(small_config(sample_rate_hz=44100, stems=("vocals", "drums", "bass", "other"))).eval()
    with torch.no_grad():  # masks that differ by band, so the estimates are not just the mixture scaled
        net.mask.conv.weight.normal_(0.0, 2.0)
        net.mask.conv.bias.normal_(0.0, 2.0)
    path = model.save_separator(net, tmp_path / "tiny44")
    result = evaluate(str(path), MUSDB_TRAIN, "musdb", names=[song], sdr=False, channels=1)
    assert result.sample_rate_hz == 44100 and result.tracks == 1
    track = next(read_tracks(MUSDB_TRAIN, "musdb", 44100, 1, names=[song]))
    est = model.StreamingSeparator(net).separate(track.mixture)[:, 0]  # [S, T] at 44.1 kHz
    refs = np.stack([track.stems[s][0] for s in net.config.stems])
    full = np.nanmean(windowed_si_sdri(est, refs, track.mixture[0], 44100), axis=0)
    paper = np.nanmean(windowed_si_sdri(*[resample_poly(a, 1, 2, axis=-1) for a in (est, refs, track.mixture[0])],
                                        22050), axis=0)
    assert np.nanmax(np.abs(full - paper)) > 1e-2  # real music: the band above 11 kHz changes the score
    for j, s in enumerate(net.config.stems):
        if s in result.stems:
            assert result.stems[s].si_sdri_fullband_db == pytest.approx(float(full[j]), abs=1e-3)
            assert result.stems[s].si_sdri_db == pytest.approx(float(paper[j]), abs=1e-3)


def test_oracle_masks_give_back_a_stem_that_is_the_whole_mixture(tiny_model):
    net = model.load_separator(tiny_model)  # untrained: its basis and synthesis are still a tight frame
    rng = np.random.default_rng(3)
    mixture = rng.standard_normal((2, 3000)).astype(np.float32) * 0.1
    alone = np.zeros((4, 2, 3000), np.float32)
    alone[2] = mixture
    for kind in ("psm", "irm"):
        stems = oracle_stems(net, mixture, alone, kind)
        assert stems.shape == (4, 2, 3000)
        np.testing.assert_allclose(stems[2], mixture, atol=1e-5)
        assert np.abs(stems[[0, 1, 3]]).max() < 1e-5
    split = rng.dirichlet(np.ones(4), size=3000).T[:, None, :].astype(np.float32) * mixture  # [4, 2, T]
    consistent = model.RQVAESeparator(small_config(mixture_consistency=True)).eval()
    stems = oracle_stems(consistent, mixture, split, "psm")
    np.testing.assert_allclose(stems.sum(0), mixture, atol=1e-5)  # mixture consistency still holds
    assert np.abs(oracle_stems(net, mixture, split, "psm").sum(0) - mixture).max() > 1e-3  # (without it, not exact)


def test_oracle_scores_are_the_ceiling_and_say_so(data, tiny_model, tmp_path, capsys):
    args = ["--data", str(data), "--format", "slakh", "--no-sdr", "--channels", "1"]
    ours = _run(["--model", str(tiny_model), *args], tmp_path / "net.json")
    both = _run(["--model", str(tiny_model), "mixture", "--oracle", "psm", *args], tmp_path / "oracle.json")
    oracle, mix = both
    assert oracle["oracle"] == "psm" and oracle["n_q"] is None and mix["oracle"] is None
    assert ours["oracle"] is None
    for stem, score in oracle["stems"].items():  # ideal masks beat the untrained network on every stem
        assert score["si_sdri_db"] > ours["stems"][stem]["si_sdri_db"] + 3.0
        assert mix["stems"][stem]["si_sdri_db"] == 0.0
    assert "[oracle psm]" in capsys.readouterr().out


def test_oracle_needs_a_mask_model(data, tmp_path):
    net = model.RQVAESeparator(small_config(output="waveform")).eval()
    path = model.save_separator(net, tmp_path / "wave")
    with pytest.raises(ValueError, match="oracle masks need a mask model"):
        evaluate(str(path), data, "slakh", sdr=False, channels=1, oracle="psm")
    with pytest.raises(ValueError, match="unknown oracle mask"):
        evaluate(str(path), data, "slakh", sdr=False, channels=1, oracle="ibm")
    with pytest.raises(ValueError, match="oracle masks need a mask model"):
        oracle_stems(net, np.zeros((1, 64), np.float32), np.zeros((4, 1, 64), np.float32), "psm")


def test_tracks_from_a_file_name_tracks_with_commas(data, tmp_path, capsys):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    first = sorted(p for p in copy.iterdir() if p.is_dir())[0]
    first.rename(copy / "Jokers, Jacks & Kings")  # a real MUSDB name has a comma
    names = tmp_path / "names.txt"
    names.write_text("Jokers, Jacks & Kings\n\n")
    result = _run(["--model", "mixture", "--data", str(copy), "--format", "slakh", "--no-sdr", "--channels", "1",
                   "--tracks", f"@{names}"], tmp_path / "r.json")
    assert result["track_names"] == ["Jokers, Jacks & Kings"]
    args = ["eval", "--model", "mixture", "--data", str(copy), "--format", "slakh", "--no-sdr"]
    assert main([*args, "--tracks", f"@{tmp_path / 'absent.txt'}"]) == 2
    assert "give @FILE with one track name per line" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n")
    assert main([*args, "--tracks", f"@{tmp_path / 'empty.txt'}"]) == 2
    assert "names no track" in capsys.readouterr().err
