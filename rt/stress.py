"""``python -m rt.stress``: a long live run under CPU and GIL pressure, counting what went wrong.

Runs ``stemstream live``'s engine (:class:`rt.live.LiveStream`) on the default (JACK) devices
for ``--seconds``, optionally with a CPU-bound process pinned to another core (``--cpu-hog``)
and a Python thread busy in this process (``--busy-thread``: it holds the GIL whenever the
audio callback does not, so the callback must win it back at every period), and writes one
JSON object: engine underruns, PortAudio status flags (xruns the stream saw), the JACK
server's xruns, callbacks late by the engine's own clock, and the distribution of the
callback's compute time. ``--switch-interval`` sets ``sys.setswitchinterval`` (seconds) for
the run; it bounds how long the busy thread keeps the GIL once the callback wants it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

POLL_S = 1.0


def _busy(stop: threading.Event, counter: list[int]) -> None:
    """Pure-Python work: holds the GIL except when the interpreter hands it over."""
    n = 0
    while not stop.is_set():
        for _ in range(1000):
            n += 1
        counter[0] = n


def _cpu_hog() -> subprocess.Popen:
    """A CPU-bound process pinned to the last core."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(proc.pid, {cores[-1]})
    return proc


def _jack_xrun_counter():
    """A JACK client counting the server's xruns (``None`` if JACK-Client is unavailable)."""
    try:
        import jack
    except (ImportError, OSError):
        return None, None
    client = jack.Client("stemstream-stress-xruns", no_start_server=True)
    count = [0]
    client.set_xrun_callback(lambda _delay: count.__setitem__(0, count[0] + 1))
    client.activate()
    return client, count


def run(seconds: float, model_name: str, mode: str, blocksize: int, busy_thread: bool, cpu_hog: bool,
        switch_interval_s: float | None, release_gil: bool = False, log=print) -> dict:
    import model

    from .engine import Engine
    from .live import LiveStream, choose_devices

    choice = choose_devices(None, None)
    runtime = model.load(model_name)
    import jack
    probe = jack.Client("stemstream-stress-query", no_start_server=True)
    period = probe.blocksize
    probe.close()
    block = blocksize or period
    engine = Engine(runtime, choice.sample_rate_hz, choice.channels, block, mode=mode)
    if release_gil and engine.mode == "callback":  # the kernels callback mode used before it kept the GIL
        engine.pipeline.run_in_callback(release_gil=True)
    previous_interval = sys.getswitchinterval()
    if switch_interval_s is not None:
        sys.setswitchinterval(switch_interval_s)
    stop = threading.Event()
    busy_count = [0]
    hog = _cpu_hog() if cpu_hog else None
    busy = threading.Thread(target=_busy, args=(stop, busy_count), daemon=True) if busy_thread else None
    xrun_client, jack_xruns = _jack_xrun_counter()
    compute_ms: list[np.ndarray] = []
    seen = 0
    load_avg = []
    try:
        stream = LiveStream(engine, choice, blocksize=blocksize)
        with stream:
            if busy is not None:
                busy.start()
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                time.sleep(POLL_S)
                timings = engine.timings()
                total = engine.blocks_timed
                new = min(total - seen, len(timings))
                if new:
                    compute_ms.append(np.array([t.total_ms for t in timings[-new:]]))
                seen = total
                load_avg.append(os.getloadavg()[0])
            flags = stream.status_flags
            latency = stream.latency()
    finally:
        stop.set()
        if hog is not None:
            hog.kill()
            hog.wait()
        if xrun_client is not None:
            xrun_client.deactivate()
            xrun_client.close()
        sys.setswitchinterval(previous_interval)
    stats = engine.stats()
    engine.close()
    ms = np.concatenate(compute_ms) if compute_ms else np.zeros(0)
    period_ms = 1000.0 * block / choice.sample_rate_hz
    result = {
        "command": "python -m rt.stress " + " ".join(sys.argv[1:]),
        "seconds": seconds, "sample_rate_hz": choice.sample_rate_hz, "jack_period_samples": period,
        "block_samples": block, "channels": choice.channels, "model": model_name,
        "mode": engine.mode, "mode_reason": engine.decision.reason,
        "decision_compute_p99_ms": engine.decision.compute_p99_ms,
        "busy_thread": busy_thread, "busy_thread_iterations": busy_count[0], "cpu_hog": cpu_hog,
        "frame_step_releases_gil": bool(release_gil and engine.mode == "callback") or engine.mode == "worker",
        "switch_interval_s": switch_interval_s if switch_interval_s is not None else previous_interval,
        "engine_latency_samples": latency.engine_samples, "engine_latency_ms": 1000 * latency.engine_samples
        / choice.sample_rate_hz,
        "callbacks": stats.callbacks, "samples_in": stats.samples_in, "samples_out": stats.samples_out,
        "underrun_samples": stats.underrun_samples, "late_callbacks": stats.late_callbacks,
        "stream_status_flags": flags, "jack_xruns": jack_xruns[0] if jack_xruns else None,
        "callback_compute_ms": {"count": int(ms.size), "period_ms": period_ms,
                                **({"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                                    "p999": float(np.percentile(ms, 99.9)), "max": float(ms.max()),
                                    "over_period": int((ms > period_ms).sum())} if ms.size else {})},
        "load_average_1min": {"min": min(load_avg, default=0.0), "max": max(load_avg, default=0.0)},
        "machine": f"{os.cpu_count()} cores, {os.uname().nodename}",
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip(),
    }
    log(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rt.stress", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--model", default="musdb4")
    parser.add_argument("--mode", default="callback", choices=["auto", "callback", "worker"])
    parser.add_argument("--blocksize", type=int, default=0, help="0: the JACK period")
    parser.add_argument("--busy-thread", action="store_true", help="a busy Python thread in this process")
    parser.add_argument("--cpu-hog", action="store_true", help="a CPU-bound process pinned to the last core")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval, seconds")
    parser.add_argument("--release-gil", action="store_true",
                        help="callback mode on GIL-releasing kernels (the behaviour before they kept it), to compare")
    parser.add_argument("--json", required=True, help="write the result here")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.model, args.mode, args.blocksize, args.busy_thread, args.cpu_hog,
                 args.switch_interval, args.release_gil)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
