"""Peak memory of ``stemstream separate`` against the input's length (it streams: the peaks should match).

Makes long stereo 44.1 kHz wav files by looping ``examples/demo.flac`` with ffmpeg (in a scratch
folder, /tmp by default; never in the repository), separates each with the CLI in a child
process, and records that child's peak resident memory (``ru_maxrss`` from ``wait4``), wall and
CPU time, then deletes the outputs. Writes JSON (after each file, so a long run can be followed):

    python3 scripts/bench_separate_memory.py --minutes 20 120 --json separate_memory.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import shutil
from pathlib import Path

from child_usage import run_child

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo.flac"


def make_input(minutes: float, scratch: Path) -> Path:
    """A stereo 44.1 kHz 16-bit wav of ``minutes`` made by looping the bundled example."""
    path = scratch / f"long_{minutes:g}min.wav"
    if not path.exists():
        loops = int(minutes * 60 / 12) + 1  # the example is 12 s long
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop", str(loops), "-i", str(DEMO),
                        "-t", str(minutes * 60), "-ar", "44100", "-ac", "2", str(path)], check=True)
    return path


def measure(path: Path, out_dir: Path, extra: list[str]) -> dict:
    """Run ``stemstream separate path`` and return its peak RSS, wall and CPU seconds."""
    cmd = [sys.executable, "-m", "stemstream_cli", "separate", str(path), "--out", str(out_dir), "--quiet",
           "--overwrite", *extra]
    wall, usage = run_child(cmd, REPO)
    seconds = os.path.getsize(path) / (44100 * 2 * 2)
    return {"input": path.name, "audio_s": round(seconds, 1), "peak_rss_mib": usage.ru_maxrss / 1024,
            "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "realtime_factor_cpu": round(seconds / (usage.ru_utime + usage.ru_stime), 2),
            "load_average_1min_after": os.getloadavg()[0], "command": " ".join(cmd[1:])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[20, 120], help="input lengths (default 20 120)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/stemstream-memory-bench"),
                        help="folder for the generated inputs and the outputs (default /tmp/stemstream-memory-bench)")
    parser.add_argument("--json", type=Path, required=True, help="output JSON")
    parser.add_argument("--keep-inputs", action="store_true", help="keep the generated inputs")
    parser.add_argument("extra", nargs="*", help="more arguments for stemstream separate (after --)")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "stemstream separate peak RSS vs input length", "machine": platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "runs": []}
    for minutes in args.minutes:
        path = make_input(minutes, args.scratch)
        result["runs"].append(measure(path, args.scratch / "out", args.extra))
        shutil.rmtree(args.scratch / "out", ignore_errors=True)
        if not args.keep_inputs:
            path.unlink()
        peaks = [r["peak_rss_mib"] for r in result["runs"]]
        result["peak_rss_spread"] = round(max(peaks) / min(peaks) - 1, 4)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["runs"][-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
