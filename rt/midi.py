"""MIDI control of the stem mixer: a note toggles a stem's mute, a CC sets a stem's gain, a CC sets dry/wet.

Ports are opened with python-rtmidi's JACK API (``rtmidi.API_UNIX_JACK``): the ALSA sequencer
is absent on these machines, and the API is always passed explicitly. Messages arrive on
rtmidi's thread and go straight to the mixer's thread-safe setters. Unknown messages (other
types, unmapped notes or CCs) and malformed ones (bad length or data bytes) are ignored and
counted.
"""
from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .mixer import StemMixer

NOTE_ON, NOTE_OFF, CONTROL_CHANGE = 0x90, 0x80, 0xB0
FIRST_NOTE = 36      # C1 (GM drum pads): notes 36, 37, ... toggle stems 0, 1, ...
FIRST_GAIN_CC = 21   # CCs 21, 22, ... set the gains of stems 0, 1, ...
WET_CC = 20
MIN_GAIN_DB, MAX_GAIN_DB = -60.0, 6.0


def cc_to_gain_db(value: int) -> float:
    """0 -> silence (-inf dB); 1..127 -> -60..+6 dB, linear in dB."""
    if value == 0:
        return float("-inf")
    return MIN_GAIN_DB + (MAX_GAIN_DB - MIN_GAIN_DB) * (value - 1) / 126


@dataclass
class MidiMapping:
    """Which note mutes which stem, which CC sets which stem's gain, which CC sets dry/wet.

    ``channel`` is 1..16, or ``None`` to listen on every channel. Saved as JSON:
    ``{"channel": null, "notes": {"36": "bass"}, "gain_ccs": {"21": "bass"}, "wet_cc": 20}``;
    a ``.toml`` file with the same keys loads too (``notes = {36 = "bass"}``, no ``channel``
    for every channel).
    """

    notes: dict[int, str] = field(default_factory=dict)
    gain_ccs: dict[int, str] = field(default_factory=dict)
    wet_cc: int | None = WET_CC
    channel: int | None = None

    @classmethod
    def default(cls, stems: Sequence[str]) -> "MidiMapping":
        return cls({FIRST_NOTE + i: s for i, s in enumerate(stems)},
                   {FIRST_GAIN_CC + i: s for i, s in enumerate(stems)})

    def to_json(self) -> str:
        return json.dumps({"channel": self.channel, "notes": {str(k): v for k, v in self.notes.items()},
                           "gain_ccs": {str(k): v for k, v in self.gain_ccs.items()}, "wet_cc": self.wet_cc},
                          indent=2) + "\n"

    @classmethod
    def load(cls, path: str | Path, stems: Sequence[str]) -> "MidiMapping":
        """Read a JSON (or ``.toml``) mapping file; every problem is reported with the file name."""
        path = Path(path)
        toml = path.suffix.lower() == ".toml"
        try:
            text = path.read_text()
            data = tomllib.loads(text) if toml else json.loads(text)
        except FileNotFoundError as exc:
            raise ValueError(f"MIDI mapping file {path} does not exist") from exc
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"MIDI mapping file {path} is not valid {'TOML' if toml else 'JSON'}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"MIDI mapping file {path} must hold a JSON object, see MidiMapping's docstring")
        unknown = sorted(set(data) - {"channel", "notes", "gain_ccs", "wet_cc"})
        if unknown:
            raise ValueError(f"MIDI mapping file {path}: unknown keys {unknown}; "
                             "known keys: channel, notes, gain_ccs, wet_cc")
        try:
            mapping = cls({int(k): v for k, v in data.get("notes", {}).items()},
                          {int(k): v for k, v in data.get("gain_ccs", {}).items()},
                          data.get("wet_cc", WET_CC), data.get("channel"))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"MIDI mapping file {path}: note and CC numbers must be integers 0..127 ({exc})") from exc
        mapping.check(stems, str(path))
        return mapping

    def check(self, stems: Sequence[str], where: str = "MIDI mapping") -> None:
        numbers = list(self.notes) + list(self.gain_ccs) + ([self.wet_cc] if self.wet_cc is not None else [])
        if any(not 0 <= n <= 127 for n in numbers):
            raise ValueError(f"{where}: note and CC numbers must be within 0..127")
        if self.channel is not None and not 1 <= self.channel <= 16:
            raise ValueError(f"{where}: channel must be 1..16 or null, got {self.channel}")
        for stem in list(self.notes.values()) + list(self.gain_ccs.values()):
            if stem not in stems:
                raise ValueError(f"{where}: unknown stem {stem!r}; this model's stems are: {', '.join(stems)}")


class MidiController:
    """Applies MIDI messages to a :class:`StemMixer` through a :class:`MidiMapping`.

    ``handle(message)`` takes raw bytes (``[status, data1, data2]``), as rtmidi delivers them.
    ``learn(target)`` binds the next note or CC received to ``target``: ``"mute:<stem>"``,
    ``"gain:<stem>"`` or ``"wet"``.
    """

    def __init__(self, mixer: StemMixer, mapping: MidiMapping | None = None) -> None:
        self.mixer = mixer
        self.mapping = mapping or MidiMapping.default(mixer.stems)
        self.mapping.check(mixer.stems)
        self.handled = 0
        self.unknown = 0
        self.malformed = 0
        self._learn_target: str | None = None
        self._lock = threading.Lock()
        self._port = None

    # ------------------------------------------------------------------ messages
    def handle(self, message: Sequence[int]) -> bool:
        """Apply one message; returns whether it changed something (else it is counted)."""
        if (len(message) not in (2, 3) or not 0x80 <= message[0] <= 0xEF
                or any(not 0 <= b <= 127 for b in message[1:])):
            self.malformed += 1
            return False
        kind, channel = message[0] & 0xF0, (message[0] & 0x0F) + 1
        if len(message) != 3 and kind in (NOTE_ON, NOTE_OFF, CONTROL_CHANGE):
            self.malformed += 1
            return False
        if self.mapping.channel is not None and channel != self.mapping.channel:
            self.unknown += 1
            return False
        with self._lock:
            target = self._learn_target
            wanted = NOTE_ON if target is not None and target.startswith("mute:") else CONTROL_CHANGE
            if target is not None and kind == wanted and (kind == CONTROL_CHANGE or message[2] > 0):
                self._bind(target, message[1])
                self._learn_target = None
                self.handled += 1
                return True
        if kind == NOTE_ON and message[2] > 0 and message[1] in self.mapping.notes:
            self.mixer.toggle_mute(self.mapping.notes[message[1]])
        elif kind == CONTROL_CHANGE and message[1] in self.mapping.gain_ccs:
            self.mixer.set_gain_db(self.mapping.gain_ccs[message[1]], cc_to_gain_db(message[2]))
        elif kind == CONTROL_CHANGE and message[1] == self.mapping.wet_cc:
            self.mixer.set_wet(message[2] / 127)
        elif kind == NOTE_OFF or kind == NOTE_ON and message[2] == 0:
            return False  # the release of a mapped or unmapped key: nothing to do, nothing wrong
        else:
            self.unknown += 1
            return False
        self.handled += 1
        return True

    def learn(self, target: str) -> None:
        """Bind the next note-on (for ``mute:<stem>``) or CC (``gain:<stem>``, ``wet``) to ``target``."""
        action, _, stem = target.partition(":")
        if action not in ("mute", "gain", "wet") or (action != "wet" and stem not in self.mixer.stems):
            raise ValueError(f"learn target must be 'mute:<stem>', 'gain:<stem>' or 'wet' with a stem of "
                             f"{', '.join(self.mixer.stems)}; got {target!r}")
        with self._lock:
            self._learn_target = target

    @property
    def learning(self) -> str | None:
        """The target MIDI learn waits for (``"gain:drums"``, ...), or ``None`` when not learning."""
        return self._learn_target

    def cancel_learn(self) -> None:
        """Stop waiting for a message to learn."""
        with self._lock:
            self._learn_target = None

    def _bind(self, target: str, number: int) -> None:
        """Point note/CC ``number`` at ``target``, dropping the target's previous binding."""
        action, _, stem = target.partition(":")
        if action == "mute":
            self.mapping.notes = {k: v for k, v in self.mapping.notes.items() if v != stem}
            self.mapping.notes[number] = stem
        elif action == "wet":
            self.mapping.gain_ccs.pop(number, None)
            self.mapping.wet_cc = number
        else:
            self.mapping.gain_ccs = {k: v for k, v in self.mapping.gain_ccs.items() if v != stem}
            self.mapping.gain_ccs[number] = stem
            if self.mapping.wet_cc == number:
                self.mapping.wet_cc = None

    # ------------------------------------------------------------------ ports (JACK MIDI)
    def open(self, port: str | None = None, virtual: bool = False, client_name: str = "stemstream") -> str:
        """Listen on the first input port whose name contains ``port``, or on a new virtual port.

        Returns the port's name; a missing port is a clear error listing the ports there are.
        """
        import rtmidi

        midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client_name)
        if virtual:
            midi_in.open_virtual_port("midi_in")
            name = f"{client_name}:midi_in"
        else:
            ports = midi_in.get_ports()
            matches = [i for i, p in enumerate(ports) if port is None or port in p]
            if not matches:
                midi_in.delete()
                raise ValueError(f"no MIDI input port matches {port!r}; ports: {', '.join(ports) or 'none'} "
                                 "(or use --midi-virtual and connect to it)")
            midi_in.open_port(matches[0])
            name = ports[matches[0]]
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_callback(lambda event, _data: self.handle(event[0]))
        self._port = midi_in
        return name

    def close(self) -> None:
        if self._port is not None:
            self._port.close_port()
            self._port.delete()
            self._port = None


def list_input_ports() -> list[str]:
    """MIDI input ports JACK offers (empty when no JACK server runs)."""
    import rtmidi

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="stemstream-list")
    try:
        return list(midi_in.get_ports())
    finally:
        midi_in.delete()
