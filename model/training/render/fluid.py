"""In-process FluidSynth (``libfluidsynth`` through ctypes): one loaded soundfont, many renders.

The ``fluidsynth`` command reloads the soundfont for every file (about 0.5 s for FluidR3_GM)
and its file renderer writes one stereo pair only, so rendering each instrument of each song
with it is several times slower than real time. Loading the library once and stepping the
synthesizer between MIDI events renders every stem from one loaded soundfont.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import numpy as np

from .midi import NoteEvent

DRUM_BANK = 128
DRUM_CHANNEL = 9
_FLUID_FAILED = -1


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth")
    for candidate in ([name] if name else []) + ["libfluidsynth.so.3", "libfluidsynth.so.2"]:
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError:
            continue
    else:
        raise RuntimeError("libfluidsynth is not installed: apt-get install fluidsynth "
                           "(scripts/install.sh does it)")
    p, i, d, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    signatures = {
        "new_fluid_settings": ([], p), "delete_fluid_settings": ([p], None),
        "fluid_settings_setnum": ([p, c, d], i), "fluid_settings_setint": ([p, c, i], i),
        "new_fluid_synth": ([p], p), "delete_fluid_synth": ([p], None),
        "fluid_synth_sfload": ([p, c, i], i), "fluid_synth_program_select": ([p, i, i, i, i], i),
        "fluid_synth_noteon": ([p, i, i, i], i), "fluid_synth_noteoff": ([p, i, i], i),
        "fluid_synth_cc": ([p, i, i, i], i), "fluid_synth_pitch_bend": ([p, i, i], i),
        "fluid_synth_system_reset": ([p], i), "fluid_set_log_function": ([i, p, p], p),
        "fluid_synth_write_float": ([p, i, p, i, i, p, i, i], i),
    }
    for fname, (args, res) in signatures.items():
        fn = getattr(lib, fname)
        fn.argtypes, fn.restype = args, res
    for level in (1, 2, 3, 4):  # silence ERR/WARN/INFO/DBG chatter on stderr; failures are checked
        lib.fluid_set_log_function(level, None, None)
    return lib


class FluidSynth:
    """A FluidSynth synthesizer with one soundfont loaded, rendering dry (no reverb/chorus) stereo.

    Each :meth:`render` resets the synthesizer (notes, controllers, programs), but FluidSynth
    still carries state from one render to the next: its 64-sample block phase (events apply at
    block starts, so every onset moves with it) and residues of earlier voices. A render is
    reproducible from a new instance given the same renders before it;
    :func:`~model.training.render.dataset.render_dataset` uses one instance per track.
    """

    def __init__(self, soundfont: str | Path, sample_rate_hz: int, gain: float = 0.5,
                 polyphony: int = 256) -> None:
        if not 8000 <= sample_rate_hz <= 96000:
            raise ValueError(f"FluidSynth renders at 8000..96000 Hz, got {sample_rate_hz}; 44100 is Slakh's rate")
        path = Path(soundfont)
        if not path.is_file():
            raise FileNotFoundError(f"soundfont {path} does not exist: install fluid-soundfont-gm "
                                    "(/usr/share/sounds/sf2/FluidR3_GM.sf2) or pass --soundfont PATH")
        self._lib = _load_library()
        self.sample_rate_hz = int(sample_rate_hz)
        self._settings = self._lib.new_fluid_settings()
        for key, value in (("synth.sample-rate", float(sample_rate_hz)), ("synth.gain", float(gain))):
            self._lib.fluid_settings_setnum(self._settings, key.encode(), value)
        for key, value in (("synth.reverb.active", 0), ("synth.chorus.active", 0),
                           ("synth.polyphony", polyphony), ("synth.cpu-cores", 1)):
            self._lib.fluid_settings_setint(self._settings, key.encode(), value)
        self._synth = self._lib.new_fluid_synth(self._settings)
        if not self._synth:
            raise RuntimeError("FluidSynth could not create a synthesizer")
        self._sfont = self._lib.fluid_synth_sfload(self._synth, str(path).encode(), 1)
        if self._sfont == _FLUID_FAILED:
            self.close()
            raise ValueError(f"{path} is not a SoundFont FluidSynth can load (expected an .sf2 file)")
        self.soundfont = path

    def has_preset(self, program: int, is_drum: bool) -> bool:
        """Whether the soundfont has GM ``program`` (drum kit ``program`` in bank 128 for drums)."""
        bank = DRUM_BANK if is_drum else 0
        self._lib.fluid_synth_system_reset(self._synth)
        return self._lib.fluid_synth_program_select(self._synth, 0, self._sfont, bank, program) != _FLUID_FAILED

    def render(self, events: list[NoteEvent], program: int, is_drum: bool, num_samples: int) -> np.ndarray:
        """Render one instrument's ``events`` (any channel; remapped) -> ``[2, num_samples]`` float32
        (a transposed view of interleaved ``[num_samples, 2]`` memory).

        Drums play on the GM drum channel with kit ``program`` of bank 128; other instruments
        play GM ``program`` of bank 0. Falls back to the first preset of the bank when the
        soundfont lacks ``program``.
        """
        lib, synth = self._lib, self._synth
        frames = np.zeros((num_samples, 2), np.float32)  # interleaved, as FLAC writers want it
        left, right = frames.ctypes.data, frames.ctypes.data + frames.itemsize
        lib.fluid_synth_system_reset(synth)
        chan = DRUM_CHANNEL if is_drum else 0
        bank = DRUM_BANK if is_drum else 0
        if lib.fluid_synth_program_select(synth, chan, self._sfont, bank, program) == _FLUID_FAILED:
            lib.fluid_synth_program_select(synth, chan, self._sfont, bank, 0)
        pos = 0
        for ev in events:
            at = min(int(ev.time_s * self.sample_rate_hz), num_samples)
            if at > pos:
                lib.fluid_synth_write_float(synth, at - pos, left, 2 * pos, 2, right, 2 * pos, 2)
                pos = at
            if pos >= num_samples:
                break
            if ev.kind == "on":
                lib.fluid_synth_noteon(synth, chan, ev.a, ev.b)
            elif ev.kind == "off":
                lib.fluid_synth_noteoff(synth, chan, ev.a)
            elif ev.kind == "cc":
                lib.fluid_synth_cc(synth, chan, ev.a, ev.b)
            elif ev.kind == "bend":
                lib.fluid_synth_pitch_bend(synth, chan, ev.a)
        if pos < num_samples:
            lib.fluid_synth_write_float(synth, num_samples - pos, left, 2 * pos, 2, right, 2 * pos, 2)
        return frames.T

    def close(self) -> None:
        """Free the synthesizer (idempotent)."""
        if getattr(self, "_synth", None):
            self._lib.delete_fluid_synth(self._synth)
            self._synth = None
        if getattr(self, "_settings", None):
            self._lib.delete_fluid_settings(self._settings)
            self._settings = None

    def __enter__(self) -> "FluidSynth":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
