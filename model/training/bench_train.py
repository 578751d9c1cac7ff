"""Training throughput: audio-seconds per wall-second of the trainer's own step, by setting.

``python -m model.training.bench_train --data DIR --format musdb --json OUT [--config musdb4]`` builds a
:class:`model.training.train.Trainer` for each variant (threads x batch size x segment length), runs two
warm-up steps and then ``--steps`` timed steps of :meth:`Trainer.train_step` (sampling, forward,
loss, backward, clipping, AdamW, EMA), and writes the median rate per variant. Run it on an
idle machine: the figure is wall time.
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time

import numpy as np
import torch

from .train import Trainer, TrainSettings


def measure(settings: TrainSettings, steps: int) -> dict[str, float]:
    """Median wall seconds per step and audio-seconds per second of ``steps`` timed steps."""
    trainer = Trainer(settings, resume=False)
    seconds_per_example = trainer.sampler.segment_samples / trainer.config.sample_rate_hz
    for _ in range(2):
        trainer.train_step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    return {"step_s": step_s, "audio_s_per_s": settings.batch_size * seconds_per_example / step_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--format", required=True)
    parser.add_argument("--config", default="musdb4")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--batch-sizes", default="8,16")
    parser.add_argument("--segments-s", default="1.0,2.0")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    rows = []
    grid = itertools.product([int(t) for t in args.threads.split(",")], [int(b) for b in args.batch_sizes.split(",")],
                             [float(s) for s in args.segments_s.split(",")])
    for threads, batch, segment in grid:
        with tempfile.TemporaryDirectory() as out:
            settings = TrainSettings(data=args.data, format=args.format, out=out, config=args.config,
                                     batch_size=batch, segment_s=segment, threads=threads, valid_tracks=0)
            row = {"threads": threads, "batch_size": batch, "segment_s": segment, **measure(settings, args.steps)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"config": args.config, "torch": torch.__version__, "timed_steps": args.steps, "variants": rows}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
