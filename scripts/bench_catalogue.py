"""Files per minute of a catalogue run (``stemstream separate --jobs N``) for several N, as JSON.

    python3 scripts/bench_catalogue.py --files 8 --jobs 1,2 --json catalogue-bench.json

Copies examples/demo.flac (12 s, 44.1 kHz stereo) ``--files`` times into a temporary folder and
separates the folder with :func:`plugin_host.catalogue.run_catalogue` once per ``--jobs`` value,
each into a fresh output folder. Wall time covers everything a user waits for: loading the
model, starting the workers (spawned processes that import torch and load the model), writing.
``cpu_s`` is the CPU time of this process and its workers: on a shared machine, files per CPU
minute tell the cost apart from the contention.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin_host.catalogue import CatalogueSettings, expand_inputs, run_catalogue, summary_json  # noqa: E402

DEMO = ROOT / "examples" / "demo.flac"


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the pool's workers, once joined)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=8, help="copies of examples/demo.flac (default 8)")
    p.add_argument("--jobs", default="1,2", help="comma-separated worker counts (default 1,2)")
    p.add_argument("--model", default="musdb4", help="model (default musdb4)")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="catalogue-bench-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(args.files):
            shutil.copy(DEMO, folder / f"song{i:03d}.flac")
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = Path(tmp) / f"out-{jobs}"
            load_before = os.getloadavg()[0]
            t0, cpu0 = time.perf_counter(), _cpu_s()
            results = run_catalogue(expand_inputs([str(folder)], out), out, CatalogueSettings(args.model), jobs=jobs)
            wall_s, cpu_s = time.perf_counter() - t0, _cpu_s() - cpu0
            summary = summary_json(results)
            if summary["done"] != args.files:
                print(f"jobs {jobs}: {summary['failed']} file(s) failed", file=sys.stderr)
                return 1
            runs.append({"jobs": jobs, "files": args.files, "wall_s": round(wall_s, 2),
                         "files_per_minute": round(60 * args.files / wall_s, 2),
                         "audio_s_per_wall_s": round(summary["audio_s"] / wall_s, 2),
                         "mean_file_wall_s": round(sum(r.wall_s for r in results) / len(results), 2),
                         "cpu_s": round(cpu_s, 2), "files_per_cpu_minute": round(60 * args.files / cpu_s, 2),
                         "load_average_1min_before": round(load_before, 2),
                         "load_average_1min_after": round(os.getloadavg()[0], 2)})
            print(json.dumps(runs[-1]), flush=True)
    payload = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "model": args.model,
               "input": f"{args.files} copies of examples/demo.flac (12 s, 44.1 kHz stereo)",
               "cpu_count": os.cpu_count(), "python": platform.python_version(), "runs": runs}
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
