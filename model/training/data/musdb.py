"""MUSDB18 ``.stem.mp4`` files: 5 streams (mixture, drums, bass, other, vocals)."""
from __future__ import annotations

from pathlib import Path

from ...audio_io import read_audio
from .track import Track

MUSDB_STEMS = ("drums", "bass", "other", "vocals")  # streams 1..4; stream 0 is the mixture


def list_musdb(directory: str | Path) -> list[Path]:
    """The ``*.stem.mp4`` files of ``directory``, sorted; a clear error when there are none."""
    files = sorted(Path(directory).glob("*.stem.mp4"))
    if not files:
        raise FileNotFoundError(f"no *.stem.mp4 files in {directory}: point --data at a MUSDB18 folder")
    return files


def read_musdb(path: str | Path, sample_rate_hz: int, channels: int = 2) -> Track:
    """Decode a MUSDB18 stem file at ``sample_rate_hz`` with ``channels`` channels."""
    path = Path(path)
    mixture = read_audio(path, sample_rate_hz, channels, stream=0).samples
    stems = {name: read_audio(path, sample_rate_hz, channels, stream=i + 1).samples for i, name in enumerate(MUSDB_STEMS)}
    n = min([mixture.shape[1]] + [s.shape[1] for s in stems.values()])
    name = path.name[: -len(".stem.mp4")]
    return Track(name, mixture[:, :n], {k: v[:, :n] for k, v in stems.items()}, sample_rate_hz)
