"""Plain multitrack folders: ``mixture.wav`` plus one audio file per stem (stem name = file stem)."""
from __future__ import annotations

from pathlib import Path

import soundfile

from ...audio_io import read_audio
from .track import Track

MIXTURE_NAME = "mixture"


def _audio_files(directory: Path) -> list[Path]:
    extensions = {f".{e.lower()}" for e in soundfile.available_formats()}
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def list_folders(directory: str | Path) -> list[Path]:
    """Track folders under ``directory`` (itself, if it holds a mixture file), sorted; error if none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    candidates = [directory] + sorted(p for p in directory.iterdir() if p.is_dir())
    tracks = [d for d in candidates if any(p.stem == MIXTURE_NAME for p in _audio_files(d))]
    if not tracks:
        raise FileNotFoundError(f"no track folders in {directory}: a track folder holds mixture.wav (or .flac) "
                                "and one audio file per stem, e.g. drums.wav, bass.wav")
    return tracks


def read_folder(path: str | Path, sample_rate_hz: int, channels: int = 1) -> Track:
    """A folder with ``mixture.*`` and stem files -> :class:`Track` (signals cut to the shortest)."""
    path = Path(path)
    files = _audio_files(path)
    mixtures = [p for p in files if p.stem == MIXTURE_NAME]
    if not mixtures:
        raise FileNotFoundError(f"{path} has no mixture.wav: a track folder needs its mixture")
    stem_files = [p for p in files if p.stem != MIXTURE_NAME]
    if not stem_files:
        raise FileNotFoundError(f"{path} has a mixture but no stem files (e.g. drums.wav, bass.wav)")
    names = [p.stem for p in stem_files]
    if len(set(names)) != len(names):
        raise ValueError(f"{path} has two files for one stem: {names}; keep one file per stem name")
    mixture = read_audio(mixtures[0], sample_rate_hz, channels).samples
    stems = {p.stem: read_audio(p, sample_rate_hz, channels).samples for p in stem_files}
    n = min([mixture.shape[1]] + [s.shape[1] for s in stems.values()])
    return Track(path.name, mixture[:, :n], {k: v[:, :n] for k, v in stems.items()}, sample_rate_hz)
