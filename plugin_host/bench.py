"""Speed of :class:`StemSeparator.process` on a stereo signal (``stemstream bench-host``)."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import model

from .separator import StemSeparator


def bench_separator(model_path: str | None, seconds: float = 30.0, sample_rate_hz: int = 44100,
                    buffer_size: int = 8192, repeats: int = 3, threads: int | None = None) -> dict:
    """Median wall and CPU time of ``process(x, sample_rate_hz, buffer_size)`` on ``[2, seconds * rate]`` noise.

    CPU time is this process's own (all its threads): on a shared machine it is the steadier figure.

    Without ``model_path`` the network is the default MUSDB configuration with random weights
    (speed does not depend on the weights). One untimed warm-up run precedes the timed ones.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if model_path is None:
        torch.manual_seed(0)
        net = model.RQVAESeparator(model.musdb_config()).eval()
        source: object = net
        label = "musdb_config() random weights"
    else:
        source, label = model_path, str(model_path)
    separator = StemSeparator(source)
    x = (0.1 * np.random.default_rng(0).standard_normal((2, int(seconds * sample_rate_hz)))).astype(np.float32)
    separator.process(x[:, : sample_rate_hz], sample_rate_hz, buffer_size)  # warm-up: numba, torch
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        separator.process(x, sample_rate_hz, buffer_size)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    return {
        "benchmark": "plugin_host.StemSeparator.process", "model": label,
        "parameters": sum(p.numel() for p in separator.runtime.model.parameters()),
        "seconds_of_audio": seconds, "channels": 2, "sample_rate_hz": sample_rate_hz,
        "model_rate_hz": separator.sample_rate_hz, "buffer_size": buffer_size,
        "latency_samples": separator.latency_at(sample_rate_hz), "repeats": repeats,
        "wall_s": times, "median_wall_s": median, "realtime_factor": seconds / median,
        "cpu_s": cpu_times, "median_cpu_s": cpu_median, "realtime_factor_cpu": seconds / cpu_median,
        "load_average_1min": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(), "machine": platform.machine(), "python": platform.python_version(),
    }


def write_json(result: dict, path: str | Path | None) -> str:
    """``result`` as indented JSON, also written to ``path`` when given."""
    text = json.dumps(result, indent=2)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    return text
