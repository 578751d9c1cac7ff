"""Decoding audio streams with the ``ffmpeg`` command."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np


def decode_stream(path: str | Path, stream: int, sample_rate_hz: int, channels: int) -> np.ndarray:
    """Decode audio stream ``stream`` of ``path``, resampled and remixed: ``[channels, T]`` float32."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed: apt-get install ffmpeg (scripts/install.sh does it)")
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
           "-ac", str(channels), "-ar", str(sample_rate_hz), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ValueError(f"cannot decode audio stream {stream} of {path}: "
                         f"{proc.stderr.decode(errors='replace').strip() or 'ffmpeg failed'}")
    data = np.frombuffer(proc.stdout, np.float32)
    return data.reshape(-1, channels).T.copy()
