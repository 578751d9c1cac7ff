"""Audio decoding for the data readers is :mod:`model.audio_io`'s (the project's one reader), re-exported."""
from ..audio_io import Audio, read_audio, to_channels

__all__ = ["Audio", "read_audio", "to_channels"]
