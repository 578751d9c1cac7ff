"""Benchmarks of the real-time engine: ``python -m rt.bench --json out.json``.

1. Ring buffer: one write plus one read of a ``[2, n]`` block, per call and in samples per
   second, against a numpy-concatenate queue and a ``collections.deque`` of frames.
2. Engine: the audio callback's time per block, and the worker's time per block split into
   the model's compute and the engine's own overhead (resamplers, mixer, ring copies).
"""
from __future__ import annotations

import argparse
import collections
import json
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

CHANNELS = 2


class NumpyQueue:
    """The naive baseline: append with ``np.concatenate``, pop by slicing."""

    def __init__(self, channels: int) -> None:
        self.data = np.zeros((channels, 0), np.float32)

    def write(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x], axis=1)

    def read_into(self, out: np.ndarray) -> None:
        n = out.shape[1]
        out[:] = self.data[:, :n]
        self.data = self.data[:, n:]


class DequeQueue:
    """The other baseline: a ``collections.deque`` of frames (one tuple per sample)."""

    def __init__(self) -> None:
        self.data: collections.deque = collections.deque()

    def write(self, x: np.ndarray) -> None:
        self.data.extend(zip(*x))

    def read_into(self, out: np.ndarray) -> None:
        pop = self.data.popleft
        out[:] = np.array([pop() for _ in range(out.shape[1])], np.float32).T


def _time_calls(step: Callable[[], None], seconds: float) -> tuple[float, int]:
    """Run ``step`` repeatedly for about ``seconds``; returns (median microseconds per call, calls)."""
    for _ in range(20):
        step()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6), len(times)


def bench_ring(blocks: list[int], seconds: float) -> list[dict]:
    from .ring import RingBuffer, warmup

    warmup()
    rows = []
    for n in blocks:
        x = np.random.default_rng(0).standard_normal((CHANNELS, n)).astype(np.float32)
        out = np.empty_like(x)
        ring = RingBuffer(CHANNELS, 8 * n)
        queues = {"rt.RingBuffer": ring, "numpy concatenate": NumpyQueue(CHANNELS), "collections.deque": DequeQueue()}
        for name, q in queues.items():
            def step(q=q) -> None:
                q.write(x)
                q.read_into(out)
            us, calls = _time_calls(step, seconds)
            np.testing.assert_array_equal(out, x)  # each queue really moved the block
            rows.append({"queue": name, "block_samples": n, "channels": CHANNELS, "us_per_write_read": us,
                         "msamples_per_s": n / us, "calls": calls})
    return rows


def bench_engine(configs: dict, host_rate_hz: int, block: int, seconds: float) -> list[dict]:
    import model

    from .engine import Engine
    from .filedrive import drive

    rows = []
    for name, config in configs.items():
        torch.manual_seed(0)
        runtime = model.StreamingSeparator(model.RQVAESeparator(config).eval())
        engine = Engine(runtime, host_rate_hz, CHANNELS, block, mode="worker")  # ring callback + worker
        audio = (0.1 * np.random.default_rng(0).standard_normal((CHANNELS, int(seconds * host_rate_hz)))).astype(np.float32)
        drive(engine, audio)
        steps = engine.timings()[10:]  # past the warm-up
        model_ms = np.array([t.pipeline_ms for t in steps])  # resamplers, model, mixer
        overhead_ms = np.array([t.total_ms - t.pipeline_ms for t in steps])
        callback_us = _callback_us(engine, block)
        engine.close()
        rows.append({"model": name, "host_rate_hz": host_rate_hz, "block_samples": block, "channels": CHANNELS,
                     "frame_size": config.frame_size, "steps": len(steps),
                     "model_ms_median": float(np.median(model_ms)),
                     "engine_overhead_ms_median": float(np.median(overhead_ms)),
                     "engine_overhead_ms_p99": float(np.percentile(overhead_ms, 99)),
                     "callback_us_median": callback_us,
                     "block_period_ms": 1000 * block / host_rate_hz,
                     "latency_ms": engine.latency().total_ms})
    return rows


def _callback_us(engine, block: int, calls: int = 20000) -> float:
    """Median time of ``engine.callback`` on a block, with real ring reads (the output ring kept filled).

    No worker runs: the wake-up pipe takes one byte per call (20,000 < its 64 KiB).
    """
    indata = np.zeros((block, CHANNELS), np.float32)
    outdata = np.zeros((block, engine.output_channels), np.float32)
    refill = np.zeros((engine.output_channels, block), np.float32)
    times = np.empty(calls)
    for i in range(calls):
        engine.out_ring.write(refill)
        t0 = time.perf_counter()
        engine.callback(indata, outdata)
        times[i] = time.perf_counter() - t0
        engine.in_ring.clear()
        while engine.out_ring.available > block:  # keep the rings from filling up
            engine.out_ring.read_frames_into(outdata)
    return float(np.median(times[100:]) * 1e6)


def main(argv: list[str] | None = None) -> int:
    import model

    parser = argparse.ArgumentParser(prog="python -m rt.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per ring measurement")
    parser.add_argument("--engine-seconds", type=float, default=3.0, help="audio driven through each engine")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    configs = {
        "small (tests' config, frame 32)": model.SeparatorConfig(channels=(8, 16, 16), strides=(4, 2, 4), n_q=4,
                                                                codebook_size=32, codebook_dim=8),
        "default SeparatorConfig (frame 128), random weights": model.SeparatorConfig(),
    }
    result = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "torch_threads": args.torch_threads,
        "ring": bench_ring([64, 256, 1024, 4096], args.seconds),
        "engine": bench_engine(configs, 48000, 256, args.engine_seconds),
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    for row in result["ring"]:
        print(f"ring  {row['queue']:18s} block {row['block_samples']:5d}: {row['us_per_write_read']:8.2f} us "
              f"per write+read, {row['msamples_per_s']:8.2f} Msamples/s")
    for row in result["engine"]:
        print(f"engine {row['model']}: model {row['model_ms_median']:.2f} ms, engine overhead "
              f"{row['engine_overhead_ms_median']:.3f} ms (p99 {row['engine_overhead_ms_p99']:.3f}), callback "
              f"{row['callback_us_median']:.1f} us per {row['block_samples']}-sample block "
              f"({row['block_period_ms']:.2f} ms period)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
