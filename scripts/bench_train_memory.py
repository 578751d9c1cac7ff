"""Peak memory of a training run against its data: ``stemstream train`` for a few steps in a child
process, whose peak resident memory (``ru_maxrss`` from ``wait4``) is recorded. Songs are held in
memory for the whole run, so this peak is the run's steady footprint plus one step's work.

    python3 scripts/bench_train_memory.py --data data/slakh-render/train60 --format slakh --config slakh4 \
        --json train_memory.json [--repo OTHER_CHECKOUT]

``--repo`` runs another checkout's trainer (e.g. an older commit's, for a before/after) with this
script's measurement. The run folder is a temporary one; the decoded-track cache is used as usual
(fill it first, or the first run also times the decoding).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from child_usage import run_child

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training data folder (as stemstream train --data)")
    parser.add_argument("--format", required=True, help="its layout (as stemstream train --format)")
    parser.add_argument("--config", default="musdb4", help="preset or config JSON (default musdb4)")
    parser.add_argument("--steps", type=int, default=2, help="training steps to run (default 2)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose trainer runs (default this one)")
    parser.add_argument("--json", type=Path, required=True, help="output JSON")
    args = parser.parse_args()
    data = Path(args.data).resolve()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "stemstream_cli", "train", "--config", args.config, "--data", str(data),
               "--format", args.format, "--out", out, "--steps", str(args.steps), "--valid-tracks", "0",
               "--threads", "1"]
        wall, usage = run_child(cmd, args.repo.resolve())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.repo, capture_output=True,
                            text=True).stdout.strip()
    result = {"benchmark": "stemstream train peak RSS", "data": str(args.data), "format": args.format,
              "config": args.config, "steps": args.steps, "commit": commit, "peak_rss_mib": usage.ru_maxrss / 1024,
              "wall_s": round(wall, 1), "machine": platform.machine(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "command": " ".join(cmd[1:])}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
