"""Multitrack data: a common :class:`Track` type and readers for the layouts stemstream knows."""
from .track import Track
from .musdb import MUSDB_STEMS, list_musdb, read_musdb

__all__ = ["MUSDB_STEMS", "Track", "list_musdb", "read_musdb"]
