"""Multitrack data: a common :class:`Track` type and readers for the layouts stemstream knows.

Audio files are decoded by :func:`model.audio_io.read_audio`, the project's one reader."""
from .track import Track
from .musdb import MUSDB_STEMS, list_musdb, read_musdb
from .folder import list_folders, read_folder
from .readers import FORMATS, list_tracks, read_track, read_tracks
from .slakh import SLAKH_STEMS, list_slakh, read_slakh

__all__ = ["FORMATS", "MUSDB_STEMS", "SLAKH_STEMS", "Track", "list_folders", "list_musdb", "list_slakh",
           "list_tracks", "read_folder", "read_musdb", "read_slakh", "read_track", "read_tracks"]
