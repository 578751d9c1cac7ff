"""A decoded-track cache, so slow decoders (ffmpeg, FluidSynth renders) run once per file."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .track import Track


def cache_dir() -> Path:
    """``$STEMSTREAM_CACHE`` or ``~/.cache/stemstream``."""
    return Path(os.environ.get("STEMSTREAM_CACHE", Path.home() / ".cache" / "stemstream"))


def cached_track(source: Path, sample_rate_hz: int, channels: int,
                 read: Callable[[Path, int, int], Track]) -> Track:
    """``read(source, sample_rate_hz, channels)``, memoised on disk as float16 (keyed on name, size, mtime)."""
    stat = source.stat()
    key = f"{source.name}-{stat.st_size}-{int(stat.st_mtime)}-{sample_rate_hz}-{channels}.npz"
    path = cache_dir() / "tracks" / key
    if path.is_file():
        with np.load(path) as data:
            stems = {k[len("stem_"):]: data[k].astype(np.float32) for k in data.files if k.startswith("stem_")}
            return Track(str(data["name"]), data["mixture"].astype(np.float32), stems, sample_rate_hz)
    track = read(source, sample_rate_hz, channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # one per process: runs and DDP ranks decode at once
    np.savez(tmp, name=np.array(track.name), mixture=track.mixture.astype(np.float16),
             **{f"stem_{k}": v.astype(np.float16) for k, v in track.stems.items()})
    tmp.replace(path)
    return track
