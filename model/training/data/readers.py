"""One entry point over every layout: ``read_tracks(directory, format, sample_rate_hz, channels)``."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .cache import cached_track
from .folder import list_folders, read_folder
from .musdb import list_musdb, read_musdb
from .slakh import list_slakh, read_slakh
from .track import Track

FORMATS: dict[str, tuple[Callable[[Path], list[Path]], Callable[[Path, int, int], Track]]] = {
    "slakh": (list_slakh, read_slakh),
    "musdb": (list_musdb, read_musdb),
    "folder": (list_folders, read_folder),
}


def track_name(path: Path, format: str) -> str:
    """The name a track of ``format`` at ``path`` will have (without reading it)."""
    return path.name[: -len(".stem.mp4")] if format == "musdb" else path.name


def list_tracks(directory: str | Path, format: str, names: Sequence[str] | None = None,
                limit: int | None = None) -> list[Path]:
    """The track paths of ``directory`` in ``format``, optionally only ``names`` and the first ``limit``."""
    if format not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; use one of {', '.join(FORMATS)}")
    paths = FORMATS[format][0](Path(directory))
    if names:
        by_name = {track_name(p, format): p for p in paths}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"no track(s) {missing} in {directory}; it has e.g. {sorted(by_name)[:5]}")
        paths = [by_name[n] for n in names]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        paths = paths[:limit]
    return paths


def read_track(path: str | Path, format: str, sample_rate_hz: int, channels: int, cache: bool = False) -> Track:
    """One track of ``format`` at ``sample_rate_hz`` with ``channels`` channels (``cache``: memoise on disk)."""
    if format not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; use one of {', '.join(FORMATS)}")
    path, read = Path(path), FORMATS[format][1]
    if not cache:
        return read(path, sample_rate_hz, channels)
    # the cache keys on a file's name, size and mtime: for folder layouts, the track's mixture file
    key_file = path if path.is_file() else next((p for p in sorted(path.iterdir()) if p.stem in ("mix", "mixture")),
                                                path)
    return cached_track(key_file, sample_rate_hz, channels, lambda _key, rate, ch: read(path, rate, ch))


def read_tracks(directory: str | Path, format: str, sample_rate_hz: int, channels: int,
                names: Sequence[str] | None = None, limit: int | None = None,
                cache: bool = False) -> Iterator[Track]:
    """Yield the tracks of ``directory`` (layout ``format``: slakh, musdb or folder), one at a time.

    Each :class:`Track` holds ``mixture [channels, T]`` and its stems at ``sample_rate_hz``.
    """
    for path in list_tracks(directory, format, names, limit):
        yield read_track(path, format, sample_rate_hz, channels, cache)
