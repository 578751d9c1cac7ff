"""Run a command as a child process and return its resource usage (peak RSS, CPU time) from ``wait4``."""
from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path


def run_child(cmd: list[str], cwd: Path) -> tuple[float, resource.struct_rusage]:
    """Run ``cmd`` in ``cwd`` (stdout discarded) and return its wall seconds and ``rusage``
    (``ru_maxrss`` in KiB: the child's own peak resident memory); raise with its stderr if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")  # read before waiting: a full pipe would block the child
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}): {err[-2000:]}")
    return wall, usage
