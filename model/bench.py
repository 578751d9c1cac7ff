"""Model cost: parameters, multiply-accumulates per second of audio, CPU time per frame.

``python -m model.bench --json OUT [--model NAME_OR_PATH] [--frames N]`` (random weights of the
default config when no model is named: the compute is the same as a trained one's).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .checkpoint import load_separator
from .config import SeparatorConfig
from .runtime import StreamingSeparator
from .separator import RQVAESeparator


def macs_per_second(net: RQVAESeparator) -> float:
    """Multiply-accumulates to separate one second of mono audio (matmuls/convs, FLOPs / 2)."""
    n = net.config.sample_rate_hz // net.frame_size * net.frame_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, n))
    return counter.get_total_flops() / 2 * net.config.sample_rate_hz / n


def frame_times_ms(runtime: StreamingSeparator, channels: int, frames: int, warmup: int = 50) -> np.ndarray:
    """Wall time of ``process`` on one frame-sized block ``[channels, frame]``, per call (ms)."""
    block = (0.1 * np.random.default_rng(0).standard_normal((channels, runtime.frame_size))).astype(np.float32)
    runtime.reset()
    for _ in range(warmup):
        runtime.process(block)
    times = np.empty(frames)
    for i in range(frames):
        start = time.perf_counter()
        runtime.process(block)
        times[i] = (time.perf_counter() - start) * 1e3
    runtime.reset()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="shipped name or checkpoint dir (default: random default config)")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", required=True, help="output JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = load_separator(args.model) if args.model else RQVAESeparator(SeparatorConfig()).eval()
    runtime = StreamingSeparator(net)
    frame_ms = 1e3 * runtime.frame_size / runtime.sample_rate_hz
    result = {"model": args.model or "default config, random weights", "parameters": net.num_parameters(),
              "macs_per_second": macs_per_second(net), "frame_samples": runtime.frame_size,
              "frame_ms": frame_ms, "latency_samples": runtime.latency_samples,
              "torch_threads": torch.get_num_threads(), "machine": f"{platform.machine()} {platform.processor()}",
              "cpu_count": os.cpu_count(), "per_frame": []}
    for channels in (1, 2):
        t = frame_times_ms(runtime, channels, args.frames)
        result["per_frame"].append({"channels": channels, "p50_ms": float(np.percentile(t, 50)),
                                    "p99_ms": float(np.percentile(t, 99)), "max_ms": float(t.max()),
                                    "load_p99": float(np.percentile(t, 99) / frame_ms)})
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
