"""Model cost: parameters and multiply-accumulates per second of audio.

``python -m model.bench --json OUT [--model NAME_OR_PATH]`` (random weights of the default
config when no model is named: the cost is the same as a trained one's). ``--kernels`` adds the
numba frame step's time per kernel (mean over ``--frames`` frames of noise, ``--channels``
streams): where a frame's time goes. Time per block as the engine sees it (percentiles, deadline
misses) is measured by ``stemstream profile`` (package ``latency``).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import torch
from torch.utils.flop_counter import FlopCounterMode

from .checkpoint import load_separator
from .config import SeparatorConfig
from .numba_step import NumbaFrameStep
from .separator import RQVAESeparator


def macs_per_second(net: RQVAESeparator) -> float:
    """Multiply-accumulates to separate one second of mono audio (matmuls/convs, FLOPs / 2)."""
    n = net.config.sample_rate_hz // net.frame_size * net.frame_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, n))
    return counter.get_total_flops() / 2 * net.config.sample_rate_hz / n


def kernel_times(net: RQVAESeparator, channels: int, frames: int, warmup_frames: int = 50) -> dict:
    """The numba frame step's mean time per kernel call (µs per frame) on ``frames`` frames of
    noise (-20 dBFS RMS) in ``channels`` streams, after ``warmup_frames``; with the frame's total
    and its share of the frame's duration (the load)."""
    step = NumbaFrameStep(net, channels=channels, release_gil=False)  # the audio callback's kernels
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal((warmup_frames + frames, channels, step.frame_size))).astype(np.float32)
    step.kernel_times_s(noise[:warmup_frames])
    times = step.kernel_times_s(noise[warmup_frames:])
    total_us = 1e6 * sum(t for _, t in times)
    frame_us = 1e6 * step.frame_size / net.config.sample_rate_hz
    return {"channels": channels, "frames": frames, "frame_us": frame_us, "total_us": total_us,
            "mean_load": total_us / frame_us,
            "kernels": [{"index": i, "kernel": name, "us": 1e6 * t, "share": 1e6 * t / total_us}
                        for i, (name, t) in enumerate(times)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="shipped name or checkpoint dir (default: random default config)")
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--kernels", action="store_true", help="also time the numba frame step per kernel")
    parser.add_argument("--channels", type=int, default=2, help="streams for --kernels (default 2: stereo)")
    parser.add_argument("--frames", type=int, default=2000, help="frames timed for --kernels (default 2000)")
    args = parser.parse_args(argv)
    if args.channels < 1 or args.frames < 1:
        parser.error("--channels and --frames must be positive")
    net = load_separator(args.model) if args.model else RQVAESeparator(SeparatorConfig()).eval()
    config = net.config
    result = {"model": args.model or "default config, random weights", "parameters": net.num_parameters(),
              "macs_per_second": macs_per_second(net), "frame_samples": config.frame_size,
              "frame_ms": 1e3 * config.frame_size / config.sample_rate_hz,
              "latency_samples": config.latency_samples,
              "latency_ms": 1e3 * config.latency_samples / config.sample_rate_hz}
    if args.kernels:
        result["numba_kernels"] = kernel_times(net, args.channels, args.frames)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
