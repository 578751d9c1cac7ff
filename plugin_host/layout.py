"""pedalboard's input conventions: validation, channel-layout detection, and the way back.

pedalboard takes 1-D mono or 2-D audio, channels-first ``[C, T]`` or channels-last ``[T, C]``
(the smaller dimension is channels), float32 or float64, and returns float32 in the same
layout. A square array is ambiguous: it takes the layout last detected by the same object, and
is an error when there is none (``reset()`` forgets it). This module does the same for our
processors, so they can sit next to pedalboard's own plugins.
"""
from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import numpy as np

from model.runtime import check_channels_first


class Layout(Enum):
    """How a caller's array holds its channels."""

    MONO = "mono"                    # 1-D ``[T]``
    CHANNELS_FIRST = "channels_first"  # ``[C, T]``
    CHANNELS_LAST = "channels_last"    # ``[T, C]``


class Planar(NamedTuple):
    """A caller's audio as ``[C, T]`` float32 plus what is needed to give it back in kind."""

    audio: np.ndarray  # [C, T] float32, C-contiguous, a copy
    layout: Layout


def detect_layout(shape: tuple[int, ...], last: Layout | None) -> Layout:
    """The layout of an array of ``shape``; ``last`` resolves a square shape (None: error)."""
    if len(shape) == 1:
        return Layout.MONO
    if len(shape) != 2:
        raise ValueError(f"audio must be 1-D [samples] or 2-D [channels, samples] / [samples, channels], "
                         f"got {len(shape)}-D shape {shape}; pass one signal at a time (loop over a batch)")
    rows, cols = shape
    if rows < cols:
        return Layout.CHANNELS_FIRST
    if cols < rows:
        return Layout.CHANNELS_LAST
    if last is not None and last is not Layout.MONO:
        return last
    raise ValueError(f"cannot tell channels from samples in a square array of shape {shape}: process a "
                     "non-square array first (this processor then keeps that layout until reset()), "
                     "or pass at least as many samples as channels plus one")


def check_audio(audio: object) -> np.ndarray:
    """``audio`` as a float ndarray after pedalboard's checks, with errors saying what to do.

    Raises ``TypeError`` for non-float data and ``ValueError`` for more than two dimensions.
    NaN and infinity pass (processors zero and count them: :func:`finite`).
    """
    if hasattr(audio, "detach") and hasattr(audio, "numpy"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    array = np.asarray(audio)
    if array.dtype not in (np.float32, np.float64):
        hint = (" convert integer PCM first, e.g. x.astype(np.float32) / 32768 for int16"
                if np.issubdtype(array.dtype, np.integer) else " convert it with x.astype(np.float32)")
        raise TypeError(f"audio must be float32 or float64 (as pedalboard requires), got {array.dtype};{hint}")
    if array.ndim not in (1, 2):
        detect_layout(array.shape, None)  # raises the dimension error
    return array


def check_planar(audio: object) -> np.ndarray:
    """``audio`` checked as ``[C, T]`` float audio (what ``process_channels_first`` takes), as float32."""
    array = check_audio(audio)
    if array.ndim != 2:
        raise ValueError(f"process_channels_first takes 2-D [channels, samples], got shape {array.shape}: use "
                         "x[None, :] for mono, or process(), which takes pedalboard's layouts")
    check_channels_first(array.shape)
    return np.asarray(array, dtype=np.float32)


def finite(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """``audio`` with NaN and infinite samples replaced by zeros (a copy only when there are any),
    and how many were replaced. A NaN fed to a recurrent model would poison every later sample."""
    bad = ~np.isfinite(audio)
    count = int(np.count_nonzero(bad))
    if count:
        audio = audio.copy()
        audio[bad] = 0.0
    return audio, count


def to_planar(audio: np.ndarray, last: Layout | None) -> Planar:
    """A checked array (see :func:`check_audio`) as ``[C, T]`` float32 and its layout."""
    layout = detect_layout(audio.shape, last)
    if layout is Layout.MONO:
        planar = audio[None, :]
    elif layout is Layout.CHANNELS_LAST:
        planar = audio.T
    else:
        planar = audio
    return Planar(np.array(planar, dtype=np.float32, order="C"), layout)


def from_planar(planar: np.ndarray, layout: Layout) -> np.ndarray:
    """``[C, T]`` back to the caller's layout, float32 and C-contiguous as pedalboard returns it."""
    if layout is Layout.MONO:
        out = planar[0]
    elif layout is Layout.CHANNELS_LAST:
        out = planar.T
    else:
        out = planar
    return np.ascontiguousarray(out, dtype=np.float32)
