"""Output formats of ``stemstream separate`` and one-call writing; the safe streaming writers are
:mod:`model.audio_out`'s, the reader :mod:`model.audio_io`'s (one of each for the whole project)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.audio_io import STEM_SUFFIXES, is_stem_file
from model.audio_out import FLOAT_SUBTYPE, PCM_SUBTYPE, AudioWriter, OutputSet, check_outputs

OUTPUT_FORMATS = ("wav", "flac", "stem.mp4")
PCM_BIT_DEPTH = 24  # of written wav and flac files

__all__ = ["FLOAT_SUBTYPE", "OUTPUT_FORMATS", "PCM_SUBTYPE", "STEM_SUFFIXES", "AudioWriter", "OutputSet",
           "check_outputs", "is_stem_file", "write_audio"]


def write_audio(path: str | Path, samples: np.ndarray, sample_rate_hz: int, subtype: str = PCM_SUBTYPE) -> Path:
    """``samples [C, T]`` to a wav or flac file in one go (24-bit unless ``subtype="FLOAT"``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AudioWriter(path, sample_rate_hz, samples.shape[0], subtype) as writer:
        writer.write(samples)
    return path
