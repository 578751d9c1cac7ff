"""Drive an :class:`~rt.engine.Engine` from an array instead of a device: same callback, same worker.

``realtime=False`` (as fast as possible): after each callback the driver runs the worker's
step itself, so results are deterministic and no block is ever late.
``realtime=True``: the worker runs in its own thread and the driver paces the callbacks on
the wall clock like a sound card would, so a slow model shows up as underruns.
:func:`drive_file` is ``stemstream live --input-file/--output-file``: output checked before any
work, NaN/inf input zeroed and counted, the result written to a temporary file that is renamed
into place only when complete.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.audio_io import probe_audio, read_audio
from model.audio_out import FLOAT_SUBTYPE, PCM_SUBTYPE, AudioWriter, OutputSet, check_outputs

from .engine import Engine


@dataclass(frozen=True)
class FileDriveResult:
    """What :func:`drive_file` did."""

    output: Path
    frames: int               # output length (input + the engine's latency)
    channels: int
    sample_rate_hz: int
    nonfinite_samples: int    # NaN/inf input samples replaced by zeros
    float_output: bool        # the output went beyond full scale and was written as 32-bit float wav
    clipped_samples: int      # beyond full scale in an integer (flac) output


def drive_file(make_engine: Callable[[int, int], Engine], input_path: str | Path, output_path: str | Path,
               overwrite: bool = False, max_channels: int = 2) -> tuple[FileDriveResult, Engine]:
    """Run ``make_engine(sample_rate_hz, channels)`` over the file ``input_path`` into ``output_path``.

    The output is checked first (never the input; an existing file only with ``overwrite``; a
    folder that cannot take files is an error), the input read (damaged input is an error),
    NaN/inf samples zeroed and counted, and the output written to a temporary file renamed into
    place at the end (a failure or Ctrl-C leaves nothing). A wav output beyond full scale is written
    as 32-bit float instead of clipped. Returns the result and the (still open) engine.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    check_outputs([output_path], {input_path.resolve()}, overwrite)
    info = probe_audio(input_path)
    audio = read_audio(input_path, None, min(max_channels, info.channels)).samples
    bad = ~np.isfinite(audio)
    nonfinite = int(np.count_nonzero(bad))
    audio[bad] = 0.0
    engine = make_engine(info.sample_rate_hz, audio.shape[0])
    with OutputSet([output_path]) as outputs:
        out = drive(engine, audio)
        over = bool(np.abs(out).max(initial=0.0) > 1.0) and output_path.suffix.lower() != ".flac"
        with AudioWriter(outputs.temp_path(output_path), info.sample_rate_hz, out.shape[0],
                         FLOAT_SUBTYPE if over else PCM_SUBTYPE) as writer:
            writer.write(out)
        outputs.commit()
    return FileDriveResult(output_path, out.shape[1], out.shape[0], info.sample_rate_hz, nonfinite, over,
                           writer.clipped_samples), engine


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
