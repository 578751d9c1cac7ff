"""Slakh2100 tracks (``TrackNNNNN/mix.flac``, ``stems/SNN.flac``, ``metadata.yaml``).

Stems are grouped by ``inst_class`` into the four stems the paper and MSDM use: ``bass``,
``drums`` (``is_drum`` or class Drums), ``guitar`` and ``piano``; every other instrument stays
in the mixture only. The mixture is ``mix.flac``. A group with no rendered stem in a track is
silence (zeros), so every track has the same four stems.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ...audio_io import read_audio
from .track import Track

SLAKH_STEMS = ("bass", "drums", "guitar", "piano")
_CLASS_TO_STEM = {"Bass": "bass", "Drums": "drums", "Guitar": "guitar", "Piano": "piano"}


def list_slakh(directory: str | Path) -> list[Path]:
    """Track folders (those with a ``metadata.yaml``) of ``directory``, sorted; error if none."""
    tracks = sorted(p.parent for p in Path(directory).glob("*/metadata.yaml"))
    if not tracks:
        raise FileNotFoundError(f"no Slakh tracks (TrackNNNNN/metadata.yaml) in {directory}: point at a "
                                "Slakh2100 split folder or a folder written by `stemstream render`")
    return tracks


def stem_group(meta: dict) -> str | None:
    """The stem a Slakh metadata entry belongs to (``None``: it stays in the mixture only)."""
    if meta.get("is_drum"):
        return "drums"
    return _CLASS_TO_STEM.get(str(meta.get("inst_class", "")))


def read_slakh(path: str | Path, sample_rate_hz: int, channels: int = 1) -> Track:
    """One Slakh track folder -> :class:`Track` with stems ``bass, drums, guitar, piano``."""
    path = Path(path)
    meta_path = path / "metadata.yaml"
    try:
        metadata = yaml.safe_load(meta_path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{meta_path} is missing: {path} is not a Slakh track folder") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{meta_path} is not valid YAML: {exc}") from exc
    if not isinstance(metadata, dict) or not isinstance(metadata.get("stems"), dict):
        raise ValueError(f"{meta_path} has no 'stems' mapping; is it a Slakh2100 metadata file?")
    mixture = read_audio(path / "mix.flac", sample_rate_hz, channels).samples
    audio_dir = path / str(metadata.get("audio_dir", "stems"))
    sums: dict[str, np.ndarray] = {}
    for key, meta in sorted(metadata["stems"].items()):
        group = stem_group(meta or {})
        if group is None or not (meta or {}).get("audio_rendered", True):
            continue
        audio = read_audio(audio_dir / f"{key}.flac", sample_rate_hz, channels).samples
        n = min(audio.shape[1], mixture.shape[1])
        total = sums.setdefault(group, np.zeros_like(mixture))
        total[:, :n] += audio[:, :n]
    stems = {name: sums.get(name, np.zeros_like(mixture)) for name in SLAKH_STEMS}
    return Track(path.name, mixture, stems, sample_rate_hz)
