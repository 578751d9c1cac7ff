"""Training the separator: losses and RVQ procedures, EMA, validation, checkpoints, resume, DDP."""
from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..checkpoint import load_separator, save_separator
from ..config import SeparatorConfig, musdb_config, slakh_config
from .data.readers import read_tracks
from .data.packed import read_packed
from .data.track import Track
from .allocator import keep_freed_memory
from .augment import RemixSampler
from .losses import SeparationLoss
from .metrics import PROTOCOL_RATE_HZ, to_protocol_rate, windowed_si_sdri
from ..separator import RQVAESeparator
from .warm_start import warm_start

# musdb4's stems cover the whole mixture, so its stems are made to sum to it; "-offline": the
# paper's non-causal arrangement, for comparison
PRESETS = {"slakh4": slakh_config, "musdb4": partial(musdb_config, mixture_consistency=True),
           "slakh4-offline": partial(slakh_config, causal=False, temporal="bilstm"),
           "musdb4-offline": partial(musdb_config, causal=False, temporal="bilstm")}
CHECKPOINT_FILE = "checkpoint.pt"
TRAINING_DTYPE = np.float16  # training songs in memory: the decoded-track cache's precision, half of float32's bytes


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run needs; saved in the checkpoint (``--resume`` reuses it)."""

    data: str
    format: str
    out: str
    config: str = "musdb4"
    steps: int = 20000
    batch_size: int = 8
    segment_s: float = 2.0
    lr: float = 1e-3
    warmup_steps: int = 200
    grad_clip: float = 5.0
    ema_decay: float = 0.999
    valid_tracks: int = 8
    valid_every: int = 500
    checkpoint_every: int = 200
    seed: int = 0
    threads: int = 2
    remix_prob: float = 0.5
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0: no limit
    max_cpu_minutes: float = 0.0  # stop (with a checkpoint) after this much CPU time of this process; 0: no limit
    log_mel_weight: float = 1.0  # weight of the spectral loss's log-mel term (0: linear magnitudes only)
    snr_weight: float = 0.0  # weight of the thresholded-SNR term (0: the paper's losses only)
    init_from: str = ""  # a trained model (name or directory) to start from; stems may differ
    stem_weights: str = ""  # per-stem loss weights, e.g. "other=2" (unnamed stems 1; "": all equal)
    extra_data: str = ""  # a second data set mixed into training (never validated on); "": none
    extra_format: str = ""  # its layout
    extra_share: float = 0.0  # the share of track draws that come from extra_data


# what a resumed run may change: its length, where the data is now, the machine's share
RESUME_CHANGES = ("steps", "max_minutes", "max_cpu_minutes", "threads", "data", "format")


def parse_stem_weights(spec: str, stems: tuple[str, ...]) -> tuple[float, ...] | None:
    """``"other=2,vocals=1.5"`` -> one weight per stem of ``stems`` (unnamed: 1); ``""`` -> None."""
    if not spec.strip():
        return None
    weights = dict.fromkeys(stems, 1.0)
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise ValueError(f"--stem-weights {spec!r}: write NAME=WEIGHT pairs with the model's stems "
                             f"({', '.join(stems)}), e.g. other=2")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"--stem-weights {spec!r}: {value!r} is not a number") from None
    return tuple(weights[k] for k in stems)


def read_checkpoint(out: str) -> dict:
    """The training state in ``out/checkpoint.pt``; a clear error when there is none."""
    path = Path(out) / CHECKPOINT_FILE
    if not path.is_file():
        rank = os.environ.get("RANK")
        where = ("" if rank in (None, "0") else
                 f" on this machine (rank {rank}); on several machines --out must be a shared "
                 "folder, or copy the checkpoint to every machine first")
        raise FileNotFoundError(f"--resume: no {path}{where}; start without --resume")
    return torch.load(path, map_location="cpu", weights_only=False)


def resumed_settings(out: str, **changes: object) -> TrainSettings:
    """The settings of the run in ``out`` (its checkpoint; ``out`` stays ``out`` even for a copy of
    a run made elsewhere) with ``changes`` to :data:`RESUME_CHANGES` fields applied; a change of
    ``None`` keeps the run's value."""
    unknown = set(changes) - set(RESUME_CHANGES)
    if unknown:
        raise ValueError(f"a resumed run keeps its settings; only {', '.join(RESUME_CHANGES)} may change, "
                         f"not {', '.join(sorted(unknown))}")
    return _continued(read_checkpoint(out)["settings"], out, {k: v for k, v in changes.items() if v is not None})


def _continued(saved: dict, out: str, changes: dict[str, object]) -> TrainSettings:
    """A checkpoint's ``saved`` settings, continued in folder ``out`` (a copied run continues in
    its copy) with ``changes`` to :data:`RESUME_CHANGES` fields."""
    return dataclasses.replace(TrainSettings(**saved), out=str(out), **changes)


def model_config(spec: str) -> SeparatorConfig:
    """A preset name (``slakh4``, ``musdb4``) or a path to a SeparatorConfig JSON file."""
    if spec in PRESETS:
        return PRESETS[spec]()
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--config {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file")
    return SeparatorConfig.load(path)


def load_tracks(directory: str, fmt: str, sample_rate_hz: int, dtype: type = np.float32) -> list[Track]:
    """Every track of ``directory`` in layout ``fmt`` at ``sample_rate_hz``, stereo, sorted by name,
    its signals as ``dtype``: training holds its songs as ``np.float16`` (the precision of the
    decoded-track cache, half the memory), each converted as it is read."""
    if fmt == "packed":
        tracks = read_packed(directory)
        if tracks and tracks[0].sample_rate_hz != sample_rate_hz:
            raise ValueError(f"{directory} holds {tracks[0].sample_rate_hz} Hz audio; the model needs {sample_rate_hz} Hz")
    else:  # decoding (ffmpeg, FLAC + resampling) is slow: decode once, then read the disk cache
        tracks = read_tracks(directory, fmt, sample_rate_hz, 2, cache=True)
    return sorted((t.astype(dtype) for t in tracks), key=lambda t: t.name)


def split_tracks(tracks: list[Track], n_valid: int) -> tuple[list[Track], list[Track]]:
    """Hold out every k-th track (deterministic by name) for validation."""
    if n_valid <= 0:
        return tracks, []
    if n_valid >= len(tracks):
        raise ValueError(f"{len(tracks)} tracks cannot give {n_valid} validation tracks and a training set")
    step = len(tracks) / n_valid
    valid_idx = {int(i * step + step / 2) for i in range(n_valid)}
    return ([t for i, t in enumerate(tracks) if i not in valid_idx],
            [t for i, t in enumerate(tracks) if i in valid_idx])


@torch.no_grad()
def validate(net: RQVAESeparator, tracks: list[Track]) -> dict[str, float]:
    """Mean windowed SI-SDRi per stem (and ``mean`` over those stems) over ``tracks``, channels
    as mono tracks, at the paper's 22.05 kHz (:func:`to_protocol_rate`), so models at any rate
    compare.

    The mixture is the sum of the model's stems (reference stems it lacks stay in it, as do
    the track's other sources: mixture - sum(all stems)). As in the paper's protocol a stem is
    scored only in the windows where it is active: a stem silent in every kept window of every
    track (e.g. no bass in the validation songs) is absent from the result, never NaN, and
    ``mean`` is left out too when no stem was scored.
    """
    net.eval()
    stems = net.config.stems
    rows = []
    for track in tracks:
        track = track.astype(np.float32)
        refs = np.stack([track.stems.get(s, np.zeros_like(track.mixture)) for s in stems])  # [S, C, T]
        n = track.num_samples - track.num_samples % net.frame_size
        delay = net.config.output_delay_samples
        mix = torch.from_numpy(np.ascontiguousarray(track.mixture[:, :n])).unsqueeze(1)
        device = next(net.parameters()).device
        est = net(mix.to(device)).stems.float().cpu().numpy()[..., delay:]  # [C, S, n - delay]
        m = n - delay
        rate = net.config.sample_rate_hz
        est, refs, mixture = (to_protocol_rate(a, rate) for a in (est, refs[..., :m], track.mixture[:, :m]))
        for c in range(track.mixture.shape[0]):
            rows.append(windowed_si_sdri(est[c], refs[:, c], mixture[c], PROTOCOL_RATE_HZ))
    scores = np.concatenate(rows) if rows else np.zeros((0, len(stems)))
    per_stem = {s: float(np.mean(col[np.isfinite(col)])) for s, col in zip(stems, scores.T) if np.isfinite(col).any()}
    if per_stem:
        per_stem["mean"] = float(np.mean(list(per_stem.values())))
    return per_stem


def format_validation(scores: dict[str, float], stems: tuple[str, ...]) -> str:
    """``bass 1.23 dB, drums absent, ..., mean 1.10 dB`` for :func:`validate`'s scores."""
    parts = [f"{k} {scores[k]:.2f} dB" if k in scores else f"{k} absent (silent)" for k in (*stems, "mean")]
    return ", ".join(parts)


def _agree_to_stop(stop: bool, world: int, device: torch.device) -> bool:
    """Under DDP, whether any rank wants to stop (one tiny all-reduce), so every rank stops at the
    same step: a rank leaving alone would leave the others waiting in their next all-reduce."""
    if world == 1:
        return stop
    flag = torch.tensor([float(stop)], device=device)  # nccl reduces CUDA tensors only
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


@contextlib.contextmanager
def _deferred_stop_signals() -> Iterator[list[signal.Signals]]:
    """While active, Ctrl-C (SIGINT) and SIGTERM do not interrupt a training step: they are
    appended to the yielded list, and the loop saves a checkpoint and stops before its next step,
    then raises the first of them again for the handler that was there before (the CLI's, which
    reports the stop and its exit status). Off the main thread (where Python cannot install
    signal handlers) signals keep their usual effect."""
    requested: list[signal.Signals] = []
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def defer(signum: int, frame: object) -> None:
        requested.append(signal.Signals(signum))

    previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drop_rows_after(path: Path, step: int) -> None:
    """Drop the rows of the CSV log ``path`` (first column: the step) after ``step``, so that a
    run resumed from its checkpoint at ``step`` logs every step once. No file: nothing to do."""
    if not path.is_file():
        return
    header, *rows = path.read_text().splitlines(keepends=True)
    kept = [r for r in rows if int(r.split(",", 1)[0]) <= step]
    if len(kept) < len(rows):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(header + "".join(kept))
        tmp.replace(path)


class Trainer:
    """One training run (a rank of it under ``torchrun``)."""

    def __init__(self, settings: TrainSettings, resume: bool) -> None:
        self.out = Path(settings.out)
        state = None
        if resume:
            state = read_checkpoint(settings.out)
            settings = _continued(state["settings"], settings.out, {k: getattr(settings, k) for k in RESUME_CHANGES})
        self.settings = s = settings
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.set_num_threads(s.threads)
        keep_freed_memory()
        torch.manual_seed(s.seed)
        random.seed(s.seed)
        self.config = SeparatorConfig.from_dict(state["config"]) if state else model_config(s.config)
        self.net = RQVAESeparator(self.config)
        if s.init_from and not state:
            warm_start(self.net, load_separator(s.init_from))
        self.net.to(self.device)
        self.ema = copy.deepcopy(self.net).eval()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=s.lr, betas=(0.8, 0.99), weight_decay=1e-4)
        self.step = 0
        if state:
            self.net.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["optimizer"])
            self.step = state["step"]
            if "rng" in state:  # dead-code restarts and quantizer dropout go on as uninterrupted
                torch.set_rng_state(state["rng"]["torch"])
                self.net.quantizer.dropout_generator.set_state(state["rng"]["dropout"])
                if self.device.type == "cuda" and "cuda" in state["rng"]:
                    torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.loss = SeparationLoss(self.config.sample_rate_hz, log_mel_weight=s.log_mel_weight,
                                   snr_weight=s.snr_weight,
                                   stem_weights=parse_stem_weights(s.stem_weights, self.config.stems)).to(self.device)
        tracks = load_tracks(s.data, s.format, self.config.sample_rate_hz, TRAINING_DTYPE)
        self.train_tracks, self.valid_tracks = split_tracks(tracks, s.valid_tracks)
        segment = int(s.segment_s * self.config.sample_rate_hz) // self.config.frame_size * self.config.frame_size
        train_tracks, weights = self._with_extra_data(self.train_tracks)
        # example k of step t is drawn from seed (seed, t, k): rank r takes k in [r*B, (r+1)*B), so
        # the global batch is what one process with batch world*B draws, and a resume continues it
        self.sampler = RemixSampler(train_tracks, self.config.stems, segment, seed=s.seed,
                                    remix_prob=s.remix_prob, track_weights=weights)
        self.model = self.net
        if self.world > 1:
            # every parameter gets a gradient at every step, quantizer dropout included (the
            # codebooks are one [n_q, K, D] tensor: dropped stages' rows get zeros, not None;
            # tests/model/training/test_ddp.py checks each preset), so DDP needs no unused-parameter search
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "settings.json").write_text(json.dumps(dataclasses.asdict(s), indent=2) + "\n")
            (self.out / "valid_tracks.txt").write_text("".join(t.name + "\n" for t in self.valid_tracks))
            for name in ("log.csv", "valid.csv"):  # a run stopped between checkpoints logged steps it redoes now
                _drop_rows_after(self.out / name, self.step)

    def _with_extra_data(self, tracks: list[Track]) -> tuple[list[Track], list[float] | None]:
        """``tracks`` and, with ``extra_data``, its tracks seen through the model's stems
        (:meth:`Track.onto_stems`), with draw weights giving them ``extra_share`` of the draws."""
        s = self.settings
        if not s.extra_data:
            if s.extra_share:
                raise ValueError(f"--extra-share {s.extra_share} needs --extra-data (the second data set)")
            return tracks, None
        if not 0.0 < s.extra_share < 1.0:
            raise ValueError(f"--extra-share {s.extra_share}: give the share of draws from --extra-data, "
                             "between 0 and 1 (exclusive)")
        if not s.extra_format:
            raise ValueError("--extra-data needs --extra-format (its layout)")
        extra = [t.onto_stems(self.config.stems)
                 for t in load_tracks(s.extra_data, s.extra_format, self.config.sample_rate_hz, TRAINING_DTYPE)]
        weights = [(1 - s.extra_share) / len(tracks)] * len(tracks) + [s.extra_share / len(extra)] * len(extra)
        return tracks + extra, weights

    def lr_at(self, step: int) -> float:
        s = self.settings
        warm = min(1.0, (step + 1) / max(s.warmup_steps, 1))
        progress = min(1.0, step / max(s.steps, 1))
        return s.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def train_step(self) -> dict[str, float]:
        s = self.settings
        self.net.train()
        sources = torch.from_numpy(self.sampler.batch(s.batch_size, step=self.step,
                                                      first=self.rank * s.batch_size)).to(self.device)  # [B, S + 1, L]
        mixture = sources.sum(1, keepdim=True)
        batch = sources[:, :-1]  # the stems; the last source is the rest, in the mixture only
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            out = self.model(mixture)
        delay = self.config.output_delay_samples  # the network's output lags its input
        estimate = out.stems.float()[..., delay:]
        target = batch[..., :batch.shape[-1] - delay]
        terms = self.loss(estimate, target, out.commitment_loss.float(), out.codebook_loss.float())
        self.opt.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), s.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(s.ema_decay, (1 + self.step) / (10 + self.step))
            for (name, e), p in zip(self.ema.named_parameters(), self.net.parameters()):
                if name.endswith("codebooks"):  # restarted codes must not be blended with old ones
                    e.copy_(p)
                else:
                    e.lerp_(p, 1 - decay)
            for e, b in zip(self.ema.buffers(), self.net.buffers()):
                e.copy_(b)
        self.step += 1
        return {k: float(v.detach()) for k, v in terms._asdict().items()}

    def save(self) -> None:
        """Checkpoint (atomic) and the EMA export ``out/export`` loadable with ``model.load``."""
        state = {"step": self.step, "settings": dataclasses.asdict(self.settings), "config": self.config.to_dict(),
                 "model": self.net.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(),
                 "rng": {"torch": torch.get_rng_state(), "dropout": self.net.quantizer.dropout_generator.get_state(),
                         **({"cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {})}}
        tmp = self.out / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out / CHECKPOINT_FILE)
        save_separator(self.ema.cpu(), self.out / "export")
        self.ema.to(self.device)

    def _log(self, name: str, row: dict[str, float]) -> None:
        path = self.out / name
        new = not path.exists()
        # a resumed run keeps its file's columns (a column added since is left out of that file)
        fields = list(row) if new else path.open(newline="").readline().strip().split(",")
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def run(self) -> dict[str, float]:
        """Train up to ``settings.steps``; returns the last training losses."""
        s = self.settings
        seg_s = self.sampler.segment_samples / self.config.sample_rate_hz
        last: dict[str, float] = {}
        bar = tqdm(total=s.steps, initial=self.step, disable=self.rank != 0, dynamic_ncols=True, desc="train")
        deadline = time.monotonic() + 60 * s.max_minutes if s.max_minutes > 0 else math.inf
        # a CPU-time budget (this process, all threads) makes runs sharing a machine comparable
        cpu_deadline = time.process_time() + 60 * s.max_cpu_minutes if s.max_cpu_minutes > 0 else math.inf
        with _deferred_stop_signals() as requested:
            while self.step < s.steps:
                out_of_time = time.monotonic() > deadline or time.process_time() > cpu_deadline
                budget = deadline < math.inf or cpu_deadline < math.inf
                # every rank asks under DDP (a signal may reach one rank first), so all stop at the same step
                asking = budget or self.world > 1 or bool(requested)
                if asking and _agree_to_stop(out_of_time or bool(requested), self.world, self.device):
                    # a time-boxed burst or a stop signal: save and stop, between two steps
                    if self.rank == 0:
                        self.save()
                    break
                t0 = time.perf_counter()
                last = self.train_step()
                rate = s.batch_size * self.world * seg_s / (time.perf_counter() - t0)
                bar.update(1)
                bar.set_postfix(loss=f"{last['total']:.3f}", audio_s_per_s=f"{rate:.1f}")
                if self.rank != 0:
                    continue
                self._log("log.csv", {"step": self.step, **last, "audio_s_per_s": rate, "lr": self.lr_at(self.step),
                                      "cpu_s": time.process_time(), "wall_s": time.monotonic()})
                if self.step % s.checkpoint_every == 0 or self.step == s.steps:
                    self.save()
                if self.valid_tracks and (self.step % s.valid_every == 0 or self.step == s.steps):
                    scores = validate(self.ema, self.valid_tracks)  # a stem silent in every song is absent
                    row = {k: scores.get(k, "") for k in (*self.config.stems, "mean")}  # absent: an empty cell
                    self._log("valid.csv", {"step": self.step, **row})
                    bar.write(f"step {self.step}: validation SI-SDRi " + format_validation(scores, self.config.stems))
        bar.close()
        if self.world > 1:
            dist.barrier()
        if requested:  # saved above: now the stop takes its usual course
            signal.raise_signal(requested[0])
        return last


def train(settings: TrainSettings, resume: bool = False) -> dict[str, float]:
    """Run (or resume) training; returns the last step's loss terms."""
    trainer = Trainer(settings, resume)
    try:
        return trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
