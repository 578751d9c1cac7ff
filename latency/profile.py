"""Compute profiling: how long each ``process`` call of the separator takes, per block size.

A block of ``block`` samples (at the model's rate) is fed to ``StreamingSeparator.process``
per call. A block shorter than the model's frame mostly buffers: only one call in every
``frame / block`` runs a frame, so the per-block distribution is bimodal and its tail is the
frame step. ``frames_per_call``, ``frame_call_fraction`` and ``frame_p99_ms`` say so in each row.

Definitions (per configuration, after a warm-up):
- ``budget_ms``: the block's duration, ``1000 * block / sample_rate_hz``.
- ``load_p99``: ``p99_ms / budget_ms`` (compute over the block's duration, at the 99th percentile).
- ``deadline_misses``: calls whose compute exceeded ``budget_ms``.
- ``rtf``: real-time factor, total compute over total audio duration (below 1 keeps up).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Protocol

import numpy as np
import torch

import model

from .machine import describe_machine
from .modes import build_runtime

ProgressFn = Callable[[int, int], None]
"""``progress(calls_done, calls_total)``, called between timed calls (never inside one)."""

_PROGRESS_EVERY_S = 0.25


class BlockProcessor(Protocol):
    """What the profiler drives: a :class:`model.StreamingSeparator` or anything shaped like it."""

    frame_size: int
    sample_rate_hz: int

    def process(self, block: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class BlockTimings(NamedTuple):
    """Per measured call: ``compute_ms [N]`` (wall time of ``process``) and ``frames [N]`` it ran."""

    compute_ms: np.ndarray
    frames: np.ndarray


@dataclass(frozen=True)
class BlockStats:
    """The distribution of one configuration's per-block compute time (see module docstring)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    budget_ms: float
    load_p99: float
    deadline_misses: int
    rtf: float
    calls: int
    frames_per_call: float
    frame_call_fraction: float
    frame_p99_ms: float


@dataclass(frozen=True)
class ProfileRow:
    """One configuration's result; :meth:`to_dict` gives the flat JSON row (the issue's keys first)."""

    device: str
    mode: str
    block: int
    stats: BlockStats
    channels: int
    threads: int
    seconds: float
    frame_size: int
    sample_rate_hz: int
    setup_s: float
    graph_error: str | None
    model: str
    random_weights: bool
    parameters: int
    machine: str
    load_average_1min: float
    torch_version: str

    def to_dict(self) -> dict:
        flat = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "stats"}
        head = {k: flat.pop(k) for k in ("device", "mode", "block")}
        return {**head, **dataclasses.asdict(self.stats), **flat}


class ProfileResult(NamedTuple):
    """A row and the per-call timings it summarises (for plots)."""

    row: ProfileRow
    timings: BlockTimings


def frames_run(block_samples: int, frame_size: int, first_call: int, calls: int) -> np.ndarray:
    """Frames each call ``first_call .. first_call + calls - 1`` runs after a reset: ``[calls]``."""
    fed_after = (np.arange(first_call + 1, first_call + calls + 1, dtype=np.int64) * block_samples)
    return fed_after // frame_size - (fed_after - block_samples) // frame_size


def time_blocks(runtime: BlockProcessor, block_samples: int, channels: int, seconds: float,
                warmup_seconds: float = 1.0, progress: ProgressFn | None = None,
                seed: int = 0) -> BlockTimings:
    """Reset ``runtime``, warm it up, then time ``process`` on ``seconds`` of noise ``[channels, block]``.

    The warm-up (``warmup_seconds`` of audio, at least one frame's worth of calls) runs the
    same stream, so the measured calls continue from a steady state.
    """
    if block_samples < 1 or channels < 1 or seconds <= 0 or warmup_seconds < 0:
        raise ValueError(f"need block_samples >= 1, channels >= 1, seconds > 0 and warmup_seconds >= 0; got "
                         f"{block_samples}, {channels}, {seconds}, {warmup_seconds}")
    rate = runtime.sample_rate_hz
    n_warm = max(math.ceil(warmup_seconds * rate / block_samples), math.ceil(runtime.frame_size / block_samples))
    n_calls = max(1, math.ceil(seconds * rate / block_samples))
    signal = (0.1 * np.random.default_rng(seed).standard_normal((channels, (n_warm + n_calls) * block_samples)))
    signal = signal.astype(np.float32)
    runtime.reset()
    for i in range(n_warm):
        runtime.process(signal[:, i * block_samples:(i + 1) * block_samples])
    compute_ns = np.zeros(n_calls, np.int64)
    next_report = time.monotonic()
    for k in range(n_calls):
        start = (n_warm + k) * block_samples
        block = signal[:, start:start + block_samples]
        t0 = time.perf_counter_ns()
        runtime.process(block)
        compute_ns[k] = time.perf_counter_ns() - t0
        if progress is not None and time.monotonic() >= next_report:
            progress(k + 1, n_calls)
            next_report = time.monotonic() + _PROGRESS_EVERY_S
    if progress is not None:
        progress(n_calls, n_calls)
    return BlockTimings(compute_ns / 1e6, frames_run(block_samples, runtime.frame_size, n_warm, n_calls))


def summarize(timings: BlockTimings, block_samples: int, sample_rate_hz: int) -> BlockStats:
    """Percentiles, load, deadline misses and real-time factor of one configuration."""
    ms = timings.compute_ms
    budget_ms = 1000.0 * block_samples / sample_rate_hz
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    with_frames = ms[timings.frames > 0]
    return BlockStats(
        p50_ms=p50, p95_ms=p95, p99_ms=p99, max_ms=float(ms.max()), budget_ms=budget_ms,
        load_p99=p99 / budget_ms, deadline_misses=int((ms > budget_ms).sum()),
        rtf=float(ms.sum() / (len(ms) * budget_ms)), calls=len(ms),
        frames_per_call=float(timings.frames.mean()),
        frame_call_fraction=float((timings.frames > 0).mean()),
        frame_p99_ms=float(np.percentile(with_frames, 99)) if len(with_frames) else float("nan"),
    )


@dataclass(frozen=True)
class ModelInfo:
    """What is profiled: a label (name, directory or ``random:...``) and whether weights are random."""

    label: str
    random_weights: bool


def run_profile(net: model.RQVAESeparator, info: ModelInfo, device: str, modes: list[str],
                blocks: list[int], channels: list[int], seconds: float, warmup_seconds: float = 1.0,
                n_q: int | None = None, log: Callable[[str], None] = print,
                progress: ProgressFn | None = None) -> list[ProfileResult]:
    """Profile ``net`` for every mode x channel count x block size; one result per configuration.

    Each mode x channel count gets a fresh runtime whose construction (numba compilation) and
    first call (CUDA-graph capture, ``torch.compile``) are timed as ``setup_s``; block sizes then
    share it, reset in between.
    """
    machine = describe_machine(device)
    results = []
    total, done = len(modes) * len(channels) * len(blocks), 0
    for mode in modes:
        for ch in channels:
            compiling = "compiled" in mode or mode == "numba"
            log(f"{device} {mode} {ch} ch: set-up (build, first frame{', compiling' if compiling else ''})...")
            t0 = time.perf_counter()
            runtime = build_runtime(net, device, mode, n_q)
            runtime.process(np.zeros((ch, runtime.frame_size), np.float32))
            setup_s = time.perf_counter() - t0
            if runtime.graph_error:
                log(f"warning: {runtime.graph_error}")
            log(f"set-up took {setup_s:.2f} s")
            for block in blocks:
                done += 1
                log(f"[{done}/{total}] {device} {mode} {ch} ch block {block} "
                    f"({1000 * block / runtime.sample_rate_hz:.2f} ms), {seconds:g} s of audio")
                load_average = os.getloadavg()[0]  # a shared machine's other work shows in the tail
                timings = time_blocks(runtime, block, ch, seconds, warmup_seconds, progress)
                stats = summarize(timings, block, runtime.sample_rate_hz)
                row = ProfileRow(
                    device=device, mode=mode, block=block, stats=stats, channels=ch,
                    threads=torch.get_num_threads(), seconds=seconds,
                    frame_size=runtime.frame_size, sample_rate_hz=runtime.sample_rate_hz,
                    setup_s=setup_s, graph_error=runtime.graph_error,
                    model=info.label, random_weights=info.random_weights,
                    parameters=net.num_parameters(), machine=machine,
                    load_average_1min=load_average, torch_version=torch.__version__)
                log(format_row(row))
                results.append(ProfileResult(row, timings))
    return results


def format_row(row: ProfileRow) -> str:
    """One terminal line summarising a row."""
    st = row.stats
    line = (f"  p50 {st.p50_ms:.3f}  p95 {st.p95_ms:.3f}  p99 {st.p99_ms:.3f}  max {st.max_ms:.3f} ms"
            f" | budget {st.budget_ms:.2f} ms  load_p99 {st.load_p99:.2f}"
            f"  misses {st.deadline_misses}/{st.calls}  rtf {st.rtf:.3f}")
    if st.frame_call_fraction < 1:
        line += f" | 1 call in {1 / st.frame_call_fraction:.0f} runs a frame (frame p99 {st.frame_p99_ms:.3f} ms)"
    return line


def write_json(results: list[ProfileResult], path: str | Path) -> Path:
    """Write the rows as a JSON list (NaN written as null)."""
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.row.to_dict().items()}
            for r in results]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return out
