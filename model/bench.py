"""Model cost: parameters and multiply-accumulates per second of audio.

``python -m model.bench --json OUT [--model NAME_OR_PATH]`` (random weights of the default
config when no model is named: the cost is the same as a trained one's). Time per block is
measured by ``stemstream profile`` (package ``latency``).
"""
from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from .checkpoint import load_separator
from .config import SeparatorConfig
from .separator import RQVAESeparator


def macs_per_second(net: RQVAESeparator) -> float:
    """Multiply-accumulates to separate one second of mono audio (matmuls/convs, FLOPs / 2)."""
    n = net.config.sample_rate_hz // net.frame_size * net.frame_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, n))
    return counter.get_total_flops() / 2 * net.config.sample_rate_hz / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="shipped name or checkpoint dir (default: random default config)")
    parser.add_argument("--json", required=True, help="output JSON path")
    args = parser.parse_args(argv)
    net = load_separator(args.model) if args.model else RQVAESeparator(SeparatorConfig()).eval()
    config = net.config
    result = {"model": args.model or "default config, random weights", "parameters": net.num_parameters(),
              "macs_per_second": macs_per_second(net), "frame_samples": config.frame_size,
              "frame_ms": 1e3 * config.frame_size / config.sample_rate_hz,
              "latency_samples": config.latency_samples,
              "latency_ms": 1e3 * config.latency_samples / config.sample_rate_hz}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
