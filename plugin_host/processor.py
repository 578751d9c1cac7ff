"""``PedalboardProcessor``: pedalboard's call shape on top of a channels-first ``process``."""
from __future__ import annotations

import abc
import math
import warnings

import numpy as np

from .layout import Layout, check_audio, finite, from_planar, to_planar


def check_sample_rate(sample_rate: float) -> int:
    """``sample_rate`` as an int number of Hz; a clear error for anything else."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise TypeError(f"sample_rate must be a number of Hz, got {sample_rate!r}") from None
    if not math.isfinite(rate) or rate <= 0 or rate != round(rate):
        raise ValueError(f"sample_rate must be a positive whole number of Hz (e.g. 44100), got {sample_rate!r}")
    return int(round(rate))


def check_buffer_size(buffer_size: int) -> int:
    if int(buffer_size) != buffer_size or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive integer number of samples, got {buffer_size!r}")
    return int(buffer_size)


class PedalboardProcessor(abc.ABC):
    """Base of our processors: checks and converts what pedalboard accepts, then runs
    :meth:`process_channels_first` on ``[C, T]`` float32 and gives the result back in the
    caller's layout as float32. Subclasses implement ``process_channels_first`` and ``reset``
    (calling :meth:`forget_layout`)."""

    is_effect = True
    is_instrument = False
    _last_layout: Layout | None = None
    nonfinite_samples = 0  # NaN/inf input samples zeroed since construction or reset()

    def process(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192,
                reset: bool = True) -> np.ndarray:
        """Same shape and layout as ``input_array`` (1-D, or 2-D with the smaller dimension as
        channels), float32. Empty input gives empty output of the same shape."""
        audio = check_audio(input_array)
        rate, buffer_size = check_sample_rate(sample_rate), check_buffer_size(buffer_size)
        if audio.size == 0:
            return np.zeros(audio.shape, np.float32)
        planar = to_planar(audio, self._last_layout)
        out = self.process_channels_first(planar.audio, rate, buffer_size, reset)
        self._last_layout = planar.layout
        return from_planar(out, planar.layout)

    def __call__(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192,
                 reset: bool = True) -> np.ndarray:
        return self.process(input_array, sample_rate, buffer_size, reset)

    @abc.abstractmethod
    def process_channels_first(self, audio: np.ndarray, sample_rate: int, buffer_size: int = 8192,
                               reset: bool = True) -> np.ndarray:
        """The processing itself, on checked ``[C, T]`` float32 audio; returns ``[C, T]``."""

    def forget_layout(self) -> None:
        """Forget the layout remembered for square arrays (part of ``reset()``)."""
        self._last_layout = None

    def zero_nonfinite(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` with NaN/inf samples zeroed (a copy if there are any), counted and warned about."""
        audio, count = finite(audio)
        self.count_nonfinite(count)
        return audio

    def count_nonfinite(self, count: int) -> None:
        """Add ``count`` zeroed NaN/inf samples to :attr:`nonfinite_samples`, with a warning."""
        if count:
            self.nonfinite_samples += count
            warnings.warn(f"{count} NaN or infinite input sample(s) were replaced by zeros (counted in "
                          f"{type(self).__name__}.nonfinite_samples); clean the input to silence this",
                          RuntimeWarning, stacklevel=4)
