"""Training: loss goes down, resume continues (the run's own settings, in its own folder), a 2-process DDP run (gloo) works."""
from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import model
from model.training.train import (TrainSettings, Trainer, load_tracks, parse_stem_weights, resumed_settings,
                                  split_tracks, train)
from model.training.warm_start import warm_start
from tests.helpers import MUSDB_TRAIN, REPO_ROOT, small_config

TINY = dict(channels=(8, 16, 16), strides=(4, 2, 4), n_q=2, codebook_size=16, codebook_dim=8,
            stems=("vocals", "drums", "bass", "other"))


@pytest.fixture(scope="module")
def musdb_subset(tmp_path_factory) -> Path:
    """Four real MUSDB18 previews (symlinked, never copied into the repo)."""
    if not MUSDB_TRAIN.is_dir():
        pytest.skip(f"shared MUSDB data not found at {MUSDB_TRAIN}")
    d = tmp_path_factory.mktemp("musdb")
    for f in sorted(MUSDB_TRAIN.glob("*.stem.mp4"))[:4]:
        (d / f.name).symlink_to(f)
    return d


def settings(data: Path, out: Path, **kw) -> TrainSettings:
    cfg = out.parent / "tiny.json"
    model.SeparatorConfig(**TINY).save(cfg)
    base = dict(data=str(data), format="musdb", out=str(out), config=str(cfg), steps=4, batch_size=4,
                segment_s=0.25, lr=3e-3, warmup_steps=1, valid_tracks=1, valid_every=1000,
                checkpoint_every=2, threads=1, seed=3)
    base.update(kw)
    return TrainSettings(**base)


def test_a_few_steps_lower_the_loss(musdb_subset, tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(settings(musdb_subset, tmp_path / "run"), resume=False)
    sampler = trainer.sampler
    fixed = torch.from_numpy(sampler.batch(4))

    def loss_on_fixed() -> float:
        trainer.net.eval()
        with torch.no_grad():
            out = trainer.net(fixed.sum(1, keepdim=True))
            d = trainer.config.output_delay_samples
            return float(trainer.loss(out.stems[..., d:], fixed[:, :-1, :fixed.shape[-1] - d],
                                      out.commitment_loss, out.codebook_loss).total)

    trainer.sampler.batch = lambda n, **_: fixed.numpy()  # overfit one batch: the loss must fall
    before = loss_on_fixed()
    for _ in range(25):
        trainer.train_step()
    assert loss_on_fixed() < 0.97 * before


def test_resume_continues_from_the_saved_step(musdb_subset, tmp_path):
    out = tmp_path / "run"
    train(settings(musdb_subset, out, steps=4))
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 4
    train(settings(musdb_subset, out, steps=6), resume=True)
    with (out / "log.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 6
    loaded = model.load(out / "export")  # the EMA export is a loadable checkpoint
    assert loaded.stems == TINY["stems"]
    assert (out / "valid.csv").is_file()


def test_a_run_killed_between_checkpoints_logs_each_step_once_after_resume(musdb_subset, tmp_path):
    out = tmp_path / "run"
    train(settings(musdb_subset, out, steps=4, valid_every=1))
    shutil.copy(out / "checkpoint.pt", tmp_path / "at4.pt")
    train(settings(musdb_subset, out, steps=6, valid_every=1), resume=True)
    shutil.copy(tmp_path / "at4.pt", out / "checkpoint.pt")  # as if killed at step 6 before its checkpoint
    train(settings(musdb_subset, out, steps=7, valid_every=1), resume=True)  # redoes steps 5 and 6
    for name in ("log.csv", "valid.csv"):
        with (out / name).open() as f:
            assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6, 7], name


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stemstream_cli", "train", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_resume_keeps_the_runs_own_settings_unless_given(musdb_subset, tmp_path):
    out = tmp_path / "run"
    s = settings(musdb_subset, out, steps=2, threads=1)
    train(s)
    assert resumed_settings(str(out)) == s  # nothing given: the run as it was (not the defaults)
    assert resumed_settings(str(out), steps=5, threads=None) == dataclasses.replace(s, steps=5)
    with pytest.raises(ValueError, match="only steps, .* may change, not lr"):
        resumed_settings(str(out), lr=1.0)
    # the command line needs neither --data nor --format to resume, and --steps lengthens the run
    proc = _cli("--resume", "--out", str(out), "--steps", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    proc = _cli("--resume", "--out", str(out))  # the run's own 3 steps: nothing left to do
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (out / "log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]
    copy = tmp_path / "copy"  # a copied run continues in its copy and leaves the original alone
    shutil.copytree(out, copy)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    proc = _cli("--resume", "--out", str(copy), "--steps", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.load(copy / "checkpoint.pt", weights_only=False)["step"] == 4
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    proc = _cli("--out", str(tmp_path / "new"))  # a new run without data
    assert proc.returncode == 2 and "--data and --format are needed to start a run" in proc.stderr


def test_rendered_songs_join_training_through_the_models_stems_with_their_share(musdb_subset, tmp_path):
    from model.training.render.dataset import TEST_SOUNDFONT, render_dataset

    if not TEST_SOUNDFONT.is_file():
        pytest.skip("timgm6mb-soundfont is not installed")
    rendered = tmp_path / "rendered"
    render_dataset(rendered, 2, 3.0, TEST_SOUNDFONT, seed=1, sample_rate_hz=22050)
    s = settings(musdb_subset, tmp_path / "run", steps=2, extra_data=str(rendered), extra_format="slakh",
                 extra_share=0.4, stem_weights="other=2")
    trainer = Trainer(s, resume=False)
    musdb_names = {t.name for t in trainer.train_tracks}
    assert len(musdb_names) == 3 and len(trainer.valid_tracks) == 1  # validation stays on the first data
    drawn = dict(zip((t.name for t in trainer.sampler.tracks), trainer.sampler.track_p))
    assert set(drawn) == musdb_names | {"Track00001", "Track00002"}
    assert [drawn[n] for n in sorted(musdb_names)] == pytest.approx([0.2] * 3)
    assert [drawn["Track00001"], drawn["Track00002"]] == pytest.approx([0.2, 0.2])
    song = next(t for t in trainer.sampler.tracks if t.name == "Track00001")
    assert "vocals" not in song.stems  # rendered songs have no voice: silent to the sampler
    f32 = song.astype(np.float32)  # training holds its songs as float16: the rest is exact to float16's rounding
    assert song.mixture.dtype == song.stems["other"].dtype == np.float16
    np.testing.assert_allclose(f32.stems["other"], f32.mixture - f32.stems["bass"] - f32.stems["drums"],
                               rtol=0, atol=float(np.abs(f32.mixture).max()) * 2 ** -10)
    assert trainer.loss.stem_weights.tolist() == pytest.approx((0.8, 0.8, 0.8, 1.6))
    assert all(np.isfinite(v) for v in trainer.train_step().values())
    with pytest.raises(ValueError, match="--extra-share 1.0"):
        Trainer(dataclasses.replace(s, extra_share=1.0), resume=False)
    with pytest.raises(ValueError, match="needs --extra-data"):
        Trainer(dataclasses.replace(s, extra_data=""), resume=False)


def test_stem_weights_name_the_models_stems():
    stems = ("vocals", "drums", "bass", "other")
    assert parse_stem_weights("", stems) is None
    assert parse_stem_weights("other=2, vocals=0.5", stems) == (0.5, 1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="model's stems \\(vocals, drums, bass, other\\)"):
        parse_stem_weights("guitar=2", stems)
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_stem_weights("other=x", stems)


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_saves_the_last_finished_step_and_resume_continues(musdb_subset, tmp_path, sig, status):
    s = settings(musdb_subset, tmp_path / "run", steps=100000, checkpoint_every=100000)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "stemstream_cli", "train", "--config", s.config, "--data", s.data, "--format", "musdb",
           "--out", s.out, "--steps", "100000", "--batch-size", "2", "--segment-s", "0.25", "--valid-tracks", "1",
           "--valid-every", "100000", "--checkpoint-every", "100000", "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    log = Path(s.out) / "log.csv"
    deadline = time.monotonic() + 240
    while (not log.is_file() or len(log.read_text().splitlines()) < 4) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-3000:]
    assert ("stopped by SIGTERM" if sig == signal.SIGTERM else "stopped by Ctrl-C") in err
    with log.open() as f:
        logged = [int(r["step"]) for r in csv.DictReader(f)]
    saved = torch.load(Path(s.out) / "checkpoint.pt", weights_only=False)["step"]
    assert saved == logged[-1] >= 3  # no finished step is lost, none half-done is saved
    train(settings(musdb_subset, Path(s.out), steps=saved + 1), resume=True)
    assert torch.load(Path(s.out) / "checkpoint.pt", weights_only=False)["step"] == saved + 1


def test_split_holds_out_distinct_tracks(musdb_subset):
    tracks = [dataclasses.replace(t) for t in load_tracks(str(musdb_subset), "musdb", 22050)]
    train_part, valid = split_tracks(tracks, 1)
    assert len(valid) == 1 and len(train_part) == 3
    assert not {t.name for t in valid} & {t.name for t in train_part}


def test_two_process_ddp_run(musdb_subset, tmp_path):
    out = tmp_path / "ddp"
    s = settings(musdb_subset, out, steps=3, checkpoint_every=3)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "stemstream_cli", "train", "--config", s.config, "--data", s.data, "--format", "musdb",
           "--out", s.out, "--steps", "3", "--batch-size", "2", "--segment-s", "0.25", "--valid-tracks", "1",
           "--checkpoint-every", "3", "--threads", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3


def test_packed_data_round_trip_and_time_box(musdb_subset, tmp_path):
    from model.training.data.packed import mulaw_decode, mulaw_encode, read_packed

    x = np.linspace(-1, 1, 1001).astype(np.float32)
    assert np.all(np.abs(mulaw_decode(mulaw_encode(x)) - x) <= 0.025 * np.abs(x) + 2e-4)  # log-spaced steps
    packed = tmp_path / "musdb.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-m", "stemstream_cli", "pack", "--data", str(musdb_subset),
                    "--format", "musdb", "--out", str(packed)], env=env, check=True, capture_output=True)
    tracks = read_packed(packed)
    assert len(tracks) == 4 and set(tracks[0].stems) == {"vocals", "drums", "bass", "other"}
    assert tracks[0].mixture.shape[0] == 1 and tracks[0].num_samples > 22050 * 6
    out = tmp_path / "run"
    train(settings(packed, out, format="packed", steps=1000, max_minutes=0.05))
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert 0 < state["step"] < 1000  # stopped by the time box, with a checkpoint


def test_warm_start_maps_stems_by_name_else_other():
    torch.manual_seed(0)
    source = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other")))
    for p in source.parameters():
        p.data.normal_()
    target = model.RQVAESeparator(small_config(stems=("bass", "drums", "guitar", "piano")))
    mapping = warm_start(target, source)
    assert mapping == {"bass": "bass", "drums": "drums", "guitar": "other", "piano": "other"}
    x = torch.randn(2, 1, 32 * 12)
    with torch.no_grad():
        a, b = source.eval()(x).stems, target.eval()(x).stems
    src = {s: i for i, s in enumerate(source.config.stems)}
    for i, s in enumerate(target.config.stems):
        torch.testing.assert_close(b[:, i], a[:, src[mapping[s]]])


def test_warm_start_may_switch_mixture_consistency_on():
    torch.manual_seed(0)
    source = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other")))
    target = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other"), mixture_consistency=True))
    warm_start(target, source)
    x = torch.randn(2, 1, 32 * 12)
    with torch.no_grad():
        a, b = source.eval()(x).stems, target.eval()(x).stems
    delay = source.config.output_delay_samples
    torch.testing.assert_close(b, a + (torch.nn.functional.pad(x, (delay, 0))[..., :x.shape[-1]] - a.sum(1, keepdim=True)) / 4)


def test_warm_start_into_a_longer_analysis_starts_as_the_same_function():
    torch.manual_seed(4)
    source = model.RQVAESeparator(small_config(mixture_consistency=True)).eval()
    for p in source.parameters():
        p.data.normal_(0.0, 0.2)
    target = model.RQVAESeparator(small_config(mixture_consistency=True, analysis_kernel_factor=4)).eval()
    warm_start(target, source)
    x = torch.randn(2, 1, 32 * 12)
    with torch.no_grad():
        assert torch.allclose(target(x).stems, source(x).stems, atol=1e-6)
    with pytest.raises(ValueError, match="it may only grow"):
        warm_start(source, target)


def test_warm_start_may_add_a_level_generator_that_starts_as_the_same_function_and_learns():
    torch.manual_seed(5)
    source = model.RQVAESeparator(small_config(mixture_consistency=True)).eval()
    for p in source.parameters():
        p.data.normal_(0.0, 0.2)
    target = model.RQVAESeparator(small_config(mixture_consistency=True, level_generator=True)).eval()
    warm_start(target, source)
    x = torch.randn(2, 1, 32 * 12)
    torch.testing.assert_close(target(x).stems, source(x).stems, rtol=0, atol=0)
    target(x).stems.square().sum().backward()
    assert float(target.generator.grad.abs().min()) > 0  # every stem's every vector gets a gradient
    with pytest.raises(ValueError, match="generator would be lost"):
        warm_start(source, target)


def test_warm_start_may_add_residual_units_that_start_as_the_identity_and_learn():
    torch.manual_seed(6)
    source = model.RQVAESeparator(small_config(mixture_consistency=True)).eval()
    for p in source.parameters():
        p.data.normal_(0.0, 0.2)
    target = model.RQVAESeparator(small_config(mixture_consistency=True, residual_dilations=(1, 3))).eval()
    warm_start(target, source)
    x = torch.randn(2, 1, 32 * 12)
    torch.testing.assert_close(target(x).stems, source(x).stems, rtol=0, atol=0)
    added = target.encoder[1].units[1].out
    target(x).stems.square().sum().backward()
    assert float(added.weight.grad.abs().sum()) > 0  # the added unit's last conv learns from the first step
    with pytest.raises(ValueError, match="must begin the target's"):
        warm_start(model.RQVAESeparator(small_config(residual_dilations=(3, 1))), source)
    with pytest.raises(ValueError, match="must begin the target's"):
        warm_start(source, target)


def test_warm_start_at_twice_the_rate_starts_close_to_the_source_below_its_nyquist():
    import scipy.signal
    torch.manual_seed(6)
    source = model.RQVAESeparator(small_config(mixture_consistency=True, level_generator=True)).eval()
    with torch.no_grad():
        source.mask.conv.weight.normal_(0.0, 0.5)  # masks that depend on the input
        source.generator.normal_(0.0, 0.5)
    fast = dict(sample_rate_hz=44100, strides=(8,) + source.config.strides[1:])
    target = model.RQVAESeparator(small_config(mixture_consistency=True, level_generator=True, **fast)).eval()
    untrained = model.RQVAESeparator(small_config(mixture_consistency=True, level_generator=True, **fast)).eval()
    warm_start(target, source)
    rng = np.random.default_rng(0)
    x22 = scipy.signal.lfilter(*scipy.signal.butter(4, 0.5), rng.standard_normal(32 * 40)).astype(np.float32)
    x44 = scipy.signal.resample_poly(x22, 2, 1).astype(np.float32)  # the same music at twice the rate
    with torch.no_grad():
        expected = source(torch.from_numpy(x22).view(1, 1, -1)).stems[0].numpy()
        def error_db(net):
            y = scipy.signal.resample_poly(net(torch.from_numpy(x44).view(1, 1, -1)).stems[0].numpy(), 1, 2, axis=-1)
            return 10 * np.log10(((y - expected)[:, 64:] ** 2).sum() / (expected[:, 64:] ** 2).sum())
        assert error_db(target) < -10 and error_db(target) < error_db(untrained) - 6  # -11.7 and -4.1 dB
    with pytest.raises(ValueError, match="first stride must be 2x"):
        warm_start(model.RQVAESeparator(small_config(sample_rate_hz=44100)), source)
    with pytest.raises(ValueError, match="whole multiple"):
        warm_start(model.RQVAESeparator(small_config(sample_rate_hz=48000, strides=(8, 2, 4))), source)


def test_warm_start_may_widen_the_basis_into_the_band_above_the_sources_nyquist():
    """A 2x-rate warm start with ``basis_channels``: new analysis and synthesis rows cover the band
    the source never saw, the stems start as the narrow-basis warm start's (exactly without a
    level generator, within its level's approximation with one), and the new rows learn."""
    import scipy.signal
    torch.manual_seed(7)
    fast = dict(sample_rate_hz=44100, strides=(8, 2, 4), mixture_consistency=True)
    for generator in (False, True):
        source = model.RQVAESeparator(small_config(mixture_consistency=True, level_generator=generator)).eval()
        with torch.no_grad():
            for p in source.parameters():
                p.add_(torch.randn_like(p), alpha=0.2)
        narrow = model.RQVAESeparator(small_config(level_generator=generator, **fast)).eval()
        wide = model.RQVAESeparator(small_config(level_generator=generator, basis_channels=16, **fast)).eval()
        warm_start(narrow, source)
        warm_start(wide, source)
        # music-like: little energy in the new band, which the generator's level now averages in
        x = torch.from_numpy(scipy.signal.lfilter(*scipy.signal.butter(4, 0.4), np.random.default_rng(1).standard_normal(
            (2, 1, 32 * 12))).astype(np.float32))
        with torch.no_grad():
            got, expected = wide(x).stems, narrow(x).stems
        relative = float((got - expected).abs().max() / expected.abs().max())
        assert relative < (1e-2 if generator else 1e-5), relative  # 0.006 with a generator
    # the new rows hold a tone above the source's Nyquist frequency (16 kHz at 44.1 kHz), the old ones do not
    t = torch.arange(11024) / 44100
    tone = torch.sin(2 * torch.pi * 16000 * t).view(1, 1, -1)
    with torch.no_grad():
        basis = wide.encoder[0].down(tone) - wide.encoder[0].down.conv.bias.view(1, -1, 1)
    energy = basis[0, :, 100:].square().mean(-1)
    assert float(energy[8:].sum()) > 20 * float(energy[:8].sum())  # 57x (the old rows are perturbed at random)
    wide.train()
    wide(torch.randn(2, 1, 32 * 12)).stems.square().sum().backward()
    assert float(wide.mask.conv.weight.grad.view(4, 16, -1)[:, 8:].abs().sum()) > 0
    assert float(wide.encoder[0].project.conv.weight.grad[:, 8:].abs().sum()) > 0
    with pytest.raises(ValueError, match="may only grow"):
        warm_start(narrow, wide)
    with pytest.raises(ValueError, match="at most channels\\[0\\] \\+ 16"):
        warm_start(model.RQVAESeparator(small_config(basis_channels=25, level_generator=True, **fast)), source)


def test_warm_start_refuses_other_architectures_and_unmappable_stems():
    source = model.RQVAESeparator(small_config(stems=("vocals", "drums", "bass", "other")))
    with pytest.raises(ValueError, match="n_q"):
        warm_start(model.RQVAESeparator(small_config(n_q=2)), source)
    lacking = model.RQVAESeparator(small_config(stems=("vocals", "drums")))
    with pytest.raises(ValueError, match="'guitar'.*neither"):
        warm_start(model.RQVAESeparator(small_config(stems=("drums", "guitar"))), lacking)


def test_log_mel_weight_scales_the_log_term_and_zero_leaves_linear_magnitudes():
    from model.training.losses import MultiScaleMelLoss
    torch.manual_seed(0)
    est, ref = torch.randn(2, 2, 2048), torch.randn(2, 2, 2048)
    windows = (64, 256)
    linear = sum(torch.nn.functional.l1_loss(torch.stft(est.reshape(-1, 2048), w, w // 4, window=torch.hann_window(w),
                                                        return_complex=True).abs(),
                                             torch.stft(ref.reshape(-1, 2048), w, w // 4, window=torch.hann_window(w),
                                                        return_complex=True).abs()) for w in windows) / len(windows)
    without = MultiScaleMelLoss(22050, windows, log_mel_weight=0.0)(est, ref)
    torch.testing.assert_close(without, linear)
    half = MultiScaleMelLoss(22050, windows, log_mel_weight=0.5)(est, ref)
    full = MultiScaleMelLoss(22050, windows)(est, ref)
    assert float(full - linear) > 0.01
    torch.testing.assert_close(half - linear, 0.5 * (full - linear))


def test_thresholded_snr_loss_is_each_stems_negative_snr_with_a_cap_and_a_floor():
    from model.training.losses import SeparationLoss, thresholded_snr_loss
    torch.manual_seed(0)
    ref = torch.randn(3, 2, 4096)
    noise = torch.randn(3, 2, 4096)
    noise *= ref.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True) * 10 ** (-10 / 20)  # 10 dB SNR
    # without cap and floor: exactly -10 dB; with them (-30 dB each) a little above
    assert float(thresholded_snr_loss(ref + noise, ref, 200.0, -200.0)) == pytest.approx(-10.0, abs=1e-3)
    assert -10.0 < float(thresholded_snr_loss(ref + noise, ref)) < -9.8
    assert float(thresholded_snr_loss(torch.zeros_like(ref), ref)) == pytest.approx(0.0, abs=0.01)  # + the cap
    # a perfect estimate hits the cap, not minus infinity
    assert float(thresholded_snr_loss(ref, ref, 30.0, -200.0)) == pytest.approx(-30.0, abs=1e-3)
    assert -30.0 < float(thresholded_snr_loss(ref, ref)) < -20.0
    # a stem silent in the segment: its error is measured against the floor, finite either way
    silent = ref.clone()
    silent[:, 1] = 0
    quiet, loud = silent.clone(), silent.clone()
    quiet[:, 1] = 1e-4 * noise[:, 1]
    loud[:, 1] = noise[:, 1]
    assert float(thresholded_snr_loss(quiet, silent)) < float(thresholded_snr_loss(loud, silent))
    # the separation loss adds it with its weight; weight 0 leaves the paper's losses as they were
    est, commit, codebook = ref + noise, torch.tensor(0.1), torch.tensor(0.2)
    plain = SeparationLoss(22050)(est, ref, commit, codebook)
    weighted = SeparationLoss(22050, snr_weight=0.5)(est, ref, commit, codebook)
    torch.testing.assert_close(weighted.total - plain.total, 0.5 * thresholded_snr_loss(est, ref))
    assert float(plain.snr) == 0.0


def test_validation_scores_a_44k_model_at_the_papers_rate():
    """The trainer's validation resamples a 44.1 kHz model's estimates, references and mixture to
    22.05 kHz before scoring, so its curve compares with 22.05 kHz models'."""
    import scipy.signal
    from model.training.data.track import Track
    from model.training.metrics import windowed_si_sdri
    from model.training.train import validate
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config(sample_rate_hz=44100, strides=(8, 2, 4))).eval()
    with torch.no_grad():
        net.mask.conv.weight.normal_(0.0, 0.5)
    rng = np.random.default_rng(0)
    stems = {s: (0.1 * rng.standard_normal((1, 64 * 3445))).astype(np.float32) for s in net.config.stems}
    track = Track("t", sum(stems.values()), stems, 44100)
    with torch.no_grad():
        scores = validate(net, [track])
        est = net(torch.from_numpy(track.mixture).unsqueeze(1)).stems[0, :, net.config.output_delay_samples:].numpy()
    m = est.shape[-1]
    down = [scipy.signal.resample_poly(a, 1, 2, axis=-1) for a in (est, np.stack([v[0, :m] for v in stems.values()]),
                                                                   track.mixture[0, :m])]
    expected = windowed_si_sdri(*down, 22050).mean(axis=0)
    assert [scores[s] for s in net.config.stems] == pytest.approx(list(expected), abs=1e-3)
