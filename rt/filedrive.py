"""Drive an :class:`~rt.engine.Engine` from an array instead of a device: same callback, same worker.

``realtime=False`` (as fast as possible): after each callback the driver runs the worker's
step itself, so results are deterministic and no block is ever late.
``realtime=True``: the worker runs in its own thread and the driver paces the callbacks on
the wall clock like a sound card would, so a slow model shows up as underruns.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .engine import Engine


def drive(engine: Engine, audio: np.ndarray, realtime: bool = False, tail_samples: int | None = None) -> np.ndarray:
    """Feed ``audio [C, T]`` through ``engine.callback`` block by block; returns the output ``[C_out, T + tail]``.

    ``tail_samples`` of silence follow the input so the delayed end comes out too (default:
    the engine's latency rounded up).
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[0] != engine.channels:
        raise ValueError(f"the engine has {engine.channels} channel(s): audio must be [{engine.channels}, samples], "
                         f"got shape {audio.shape}")
    if tail_samples is None:
        tail_samples = math.ceil(engine.latency().engine_samples)
    block = engine.block_samples
    total = audio.shape[1] + tail_samples
    n_blocks = -(-total // block)
    padded = np.zeros((engine.channels, n_blocks * block), np.float32)
    padded[:, :audio.shape[1]] = audio
    out = np.zeros((engine.output_channels, n_blocks * block), np.float32)
    indata = np.zeros((block, engine.channels), np.float32)
    outdata = np.zeros((block, engine.output_channels), np.float32)
    if realtime:
        engine.start()
    else:
        engine.prepare()
    period_s = block / engine.host_rate_hz
    start = time.perf_counter()
    try:
        for b in range(n_blocks):
            indata[:] = padded[:, b * block:(b + 1) * block].T
            engine.callback(indata, outdata)
            out[:, b * block:(b + 1) * block] = outdata.T
            if realtime:
                wait_s = start + (b + 1) * period_s - time.perf_counter()
                if wait_s > 0:
                    time.sleep(wait_s)
            else:
                engine.step()
    finally:
        if realtime:
            engine.stop()
    return out[:, :total]
