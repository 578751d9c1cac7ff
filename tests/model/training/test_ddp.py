"""DDP training: two gloo ranks on localhost equal one process with the same global batch.

The two ranks run in spawned processes (``torch.multiprocessing``, gloo, a free local port);
the reference runs in this process. Everything random is rank-consistent (see
docs/training.md): example ``k`` of step ``t`` comes from seed ``(seed, t, k)`` and rank ``r``
draws ``k`` in ``[r*B, (r+1)*B)``; quantizer dropout uses one seed on every rank; k-means
initialisation and dead-code restarts draw from the global batch (an all-gather in rank
order) with the same generator; resume restores the generators from the checkpoint.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import model
from model.training.data.packed import pack_tracks
from model.training.data.track import Track
from model.separator import RQVAESeparator
from model.training.train import PRESETS, TrainSettings, Trainer, _agree_to_stop

SR = 22050
STEMS = ("vocals", "drums", "bass", "other")
# dead_code_threshold 0.995: a code used less than half its fair share in a step is restarted
# at once (usage EMA 0.99 * 1 + 0.01 * share), so the 4 steps exercise restarts, not just init
TINY = dict(channels=(8, 16, 16), strides=(4, 2, 4), n_q=2, codebook_size=16, codebook_dim=8, stems=STEMS,
            dead_code_threshold=0.995)
PER_RANK_BATCH = 2
STEPS = 4
LR = 3e-3
# Tolerance: a tenth of one Adam step (0.1 * lr). DDP averages the ranks' mean gradients where
# one process averages over the whole batch, and the convolutions see batches of 2 instead of
# 4: the same sums in another float32 order (relative differences about 1e-7). Adam divides
# each coordinate by its own RMS, so where a gradient is only a cancellation residue, the step
# follows that residue: right after the k-means initialisation on a batch every code is the
# mean of its residuals, and the codebook loss's gradient on it is ~0. Measured here: max
# |DDP - one process| 4.2e-5 after 4 steps (1.4 % of lr, in the codebooks; other weights about
# 1e-5), while the weights moved 8e-3 and a run that sees only rank 0's examples ends 1.4e-2
# away; both are asserted to exceed 10 * ATOL, so drawing the wrong examples, a missing
# all-reduce or a rank-local k-means or restart fails the test.
ATOL = 0.1 * LR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tone(rng: np.random.Generator, seconds: float, f0_hz: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    return (0.2 * env * np.sin(2 * np.pi * f0_hz * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """Three 1.5 s mono songs; the validation one (index 1 of 3 by name) has no bass."""
    rng = np.random.default_rng(5)
    tracks = []
    for name, f0s in (("a", (440, 90, 60, 700)), ("b", (330, 110, 0, 500)), ("c", (550, 70, 45, 900))):
        stems = {s: _tone(rng, 1.5, f0) for s, f0 in zip(STEMS, f0s) if f0}
        stems = {k: v[None] for k, v in stems.items()}
        tracks.append(Track(name, sum(stems.values()), stems, SR))
    return pack_tracks(tracks, tmp_path_factory.mktemp("ddpdata") / "tiny.npz")


def _settings(data: Path, out: Path, batch_size: int) -> TrainSettings:
    cfg = out.parent / f"{out.name}-config.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    model.SeparatorConfig(**TINY).save(cfg)
    return TrainSettings(data=str(data), format="packed", out=str(out), config=str(cfg), steps=STEPS,
                         batch_size=batch_size, segment_s=0.25, lr=LR, warmup_steps=1, valid_tracks=1,
                         valid_every=1000, checkpoint_every=1000, threads=1, seed=11)


def _rank_main(rank: int, world: int, port: int, settings: dict, stop_after: int) -> None:
    """One DDP rank: train to ``stop_after`` and checkpoint (rank 0), saving this rank's weights as
    ``OUT/rank{rank}-first.pt``; then a fresh Trainer resumes from the checkpoint on every rank and
    ``run()``s to the end, saving ``OUT/rank{rank}-final.pt``."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    out = Path(settings["out"])
    try:
        trainer = Trainer(TrainSettings(**settings), resume=False)
        while trainer.step < stop_after:
            trainer.train_step()
        if rank == 0:
            trainer.save()
        torch.save(trainer.net.state_dict(), out / f"rank{rank}-first.pt")
        dist.barrier()
        # a time budget that runs out on one rank stops every rank (one all-reduce per step)
        cpu = torch.device("cpu")
        assert _agree_to_stop(rank == 1, world, cpu) and not _agree_to_stop(False, world, cpu)
        del trainer
        resumed = Trainer(TrainSettings(**settings), resume=True)  # new model, optimizer, sampler
        resumed.run()
        torch.save(resumed.net.state_dict(), out / f"rank{rank}-final.pt")
    finally:
        dist.destroy_process_group()


def _ddp(settings: TrainSettings, stop_after: int) -> tuple[list[dict], list[dict]]:
    """Both ranks' weights after ``stop_after`` steps and after the resumed run to ``settings.steps``."""
    mp.start_processes(_rank_main, args=(2, _free_port(), dataclasses.asdict(settings), stop_after),
                       nprocs=2, join=True, start_method="spawn")
    load = [[torch.load(Path(settings.out) / f"rank{r}-{phase}.pt") for r in range(2)] for phase in ("first", "final")]
    return load[0], load[1]


def _single(settings: TrainSettings) -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(settings, resume=False)
        while trainer.step < settings.steps:
            trainer.train_step()
        return trainer.net.state_dict()
    finally:
        torch.set_num_threads(threads)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def test_two_ranks_equal_one_process_with_the_global_batch_and_resume(packed, tmp_path, capfd):
    # 2 steps, rank 0 writes the checkpoint; then every rank reads it and runs to step 4
    first, final = _ddp(_settings(packed, tmp_path / "ddp", PER_RANK_BATCH), stop_after=2)
    assert all(torch.equal(first[0][k], first[1][k]) for k in first[0])
    # identical on both ranks: had rank 1 not restored its optimizer state, its Adam steps differ
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])
    assert torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)["step"] == STEPS

    torch.manual_seed(11)  # the run's seed: the weights every run starts from
    net = RQVAESeparator(model.SeparatorConfig(**TINY))
    init = net.state_dict()
    single = _single(_settings(packed, tmp_path / "single", 2 * PER_RANK_BATCH))  # uninterrupted
    rank0_only = _single(_settings(packed, tmp_path / "half", PER_RANK_BATCH))  # what rank 0 sees alone
    # weights moved by the optimizer alone (k-means replaces the codebooks; usage is a statistic)
    learned = [k for k, _ in net.named_parameters() if k != "quantizer.codebooks"]
    moved = _max_diff({k: single[k] for k in learned}, {k: init[k] for k in learned})
    diff = _max_diff(final[0], single)
    wrong = _max_diff({k: rank0_only[k] for k in learned}, {k: single[k] for k in learned})
    with capfd.disabled():
        print(f"\nmax |DDP - single| {diff:.3g}, weights moved up to {moved:.3g}, "
              f"single with rank 0's examples only: {wrong:.3g}")
    assert diff <= ATOL
    assert moved > 10 * ATOL and wrong > 10 * ATOL

    out, err = capfd.readouterr()
    assert "find_unused_parameters" not in err  # DDP's "found no unused parameters" warning is gone
    # validation ran on rank 0 at the last step; the validation song has no bass: absent, not NaN
    with (tmp_path / "ddp" / "valid.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == [str(STEPS)] and rows[0]["bass"] == ""
    assert all(np.isfinite(float(rows[0][k])) for k in ("vocals", "drums", "other", "mean"))
    assert "bass absent (silent)" in out and "nan" not in out.lower()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_parameter_gets_a_gradient_so_ddp_needs_no_unused_parameter_search(preset):
    torch.manual_seed(0)
    config = PRESETS[preset]()
    net = RQVAESeparator(config).train()
    net.quantizer.initialized.fill_(True)  # skip the k-means initialisation: it changes no graph
    for n_q in (None, 1):  # all quantizers, and as few as quantizer dropout can leave
        net.zero_grad(set_to_none=True)
        out = net(torch.randn(2, 1, config.frame_size * 8), n_q=n_q)
        (out.stems.square().mean() + out.commitment_loss + out.codebook_loss).backward()
        assert [n for n, p in net.named_parameters() if p.grad is None] == []
