"""MIDI files as instrument parts: reading (any type 0/1 file) and writing (generated songs).

A :class:`Part` is one instrument of a song, the unit Slakh renders into one stem: a GM
program (or a drum kit), and its events in seconds. GM programs are grouped into Slakh's
instrument classes (``program // 8``; channel 10 is Drums).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import mido

GM_DRUM_CHANNEL = 9
GM_CLASSES = ("Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings", "Strings (continued)",
              "Brass", "Reed", "Pipe", "Synth Lead", "Synth Pad", "Synth Effects", "Ethnic", "Percussive",
              "Sound Effects")


def inst_class(program: int, is_drum: bool) -> str:
    """Slakh's ``inst_class`` of a GM ``program`` (0-127), ``Drums`` for the drum channel."""
    if is_drum:
        return "Drums"
    if not 0 <= program < 128:
        raise ValueError(f"GM program must be 0..127, got {program}")
    return GM_CLASSES[program // 8]


class NoteEvent(NamedTuple):
    """One channel event at ``time_s``: ``kind`` ``on`` (a=key, b=velocity), ``off`` (a=key),
    ``cc`` (a=controller, b=value) or ``bend`` (a=0..16383, 8192 centre)."""

    time_s: float
    kind: str
    a: int
    b: int = 0


_KIND_ORDER = {"off": 0, "cc": 1, "bend": 1, "on": 2}


@dataclass
class Part:
    """One instrument: GM ``program`` (kit number for drums) and its time-sorted ``events``."""

    name: str
    program: int
    is_drum: bool
    events: list[NoteEvent] = field(default_factory=list)

    @property
    def inst_class(self) -> str:
        return inst_class(self.program, self.is_drum)

    @property
    def num_notes(self) -> int:
        return sum(1 for e in self.events if e.kind == "on")

    def sort(self) -> None:
        self.events.sort(key=lambda e: (e.time_s, _KIND_ORDER[e.kind]))


def _tick_seconds(midi: mido.MidiFile) -> Callable[[int], float]:
    """A function mapping an absolute tick to seconds through the file's tempo map."""
    changes = sorted((tick, msg.tempo) for track in midi.tracks for tick, msg in _absolute(track)
                     if msg.type == "set_tempo")
    points = [(0, 0.0, 500000)]  # (tick, seconds at tick, tempo from tick on)
    for tick, tempo in changes:
        t0, s0, tempo0 = points[-1]
        points.append((tick, s0 + (tick - t0) * tempo0 / 1e6 / midi.ticks_per_beat, tempo))

    def seconds(tick: int) -> float:
        for t0, s0, tempo0 in reversed(points):
            if tick >= t0:
                return s0 + (tick - t0) * tempo0 / 1e6 / midi.ticks_per_beat
        return 0.0
    return seconds


def _absolute(track: mido.MidiTrack) -> Iterator[tuple[int, mido.Message]]:
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def read_parts(midi: mido.MidiFile | str | Path) -> list[Part]:
    """The instrument parts of a MIDI file: one per (track, channel) that plays notes.

    A part's program is the channel's last program change before its first note (GM 0 when
    there is none); channel 10 (index 9) is drums. Volume, pan, expression, sustain and
    modulation controllers and pitch bends are kept.
    """
    if not isinstance(midi, mido.MidiFile):
        path = Path(midi)
        try:
            midi = mido.MidiFile(path)
        except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{path} is not a readable MIDI file ({exc})") from exc
    if midi.type == 2:
        raise ValueError("type 2 (multi-song) MIDI files are not supported; convert to type 0 or 1")
    seconds = _tick_seconds(midi)
    events: dict[tuple[int, int], list[NoteEvent]] = {}
    programs_at_first_note: dict[tuple[int, int], int] = {}
    for index, track in enumerate(midi.tracks):
        programs: dict[int, int] = {}
        for tick, msg in _absolute(track):
            if not hasattr(msg, "channel"):
                continue
            if msg.type == "program_change":
                programs[msg.channel] = msg.program
                continue
            event = _event(msg, seconds(tick))
            if event is None:
                continue
            key = (index, msg.channel)
            if event.kind == "on":
                programs_at_first_note.setdefault(key, programs.get(msg.channel, 0))
            events.setdefault(key, []).append(event)
    parts = []
    for (index, ch), program in sorted(programs_at_first_note.items()):
        name = (midi.tracks[index].name or "").strip() or f"track{index}"
        part = Part(f"{name}-ch{ch + 1}", program, ch == GM_DRUM_CHANNEL, events[(index, ch)])
        part.sort()
        parts.append(part)
    return parts


def _event(msg: mido.Message, t: float) -> NoteEvent | None:
    if msg.type == "note_on":
        return NoteEvent(t, "on", msg.note, msg.velocity) if msg.velocity > 0 else NoteEvent(t, "off", msg.note)
    if msg.type == "note_off":
        return NoteEvent(t, "off", msg.note)
    if msg.type == "control_change" and msg.control in (1, 7, 10, 11, 64):
        return NoteEvent(t, "cc", msg.control, msg.value)
    if msg.type == "pitchwheel":
        return NoteEvent(t, "bend", msg.pitch + 8192)
    return None


def write_midi(parts: list[Part], tempo_bpm: float, path: str | Path | None = None,
               ticks_per_beat: int = 480) -> mido.MidiFile:
    """A type-1 MIDI file of ``parts`` (a conductor track, then one track per part), saved if ``path``."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    tempo = mido.bpm2tempo(tempo_bpm)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)]))
    melodic = iter([c for c in range(16) if c != GM_DRUM_CHANNEL])
    ticks_per_s = ticks_per_beat * tempo_bpm / 60.0
    for part in parts:
        ch = GM_DRUM_CHANNEL if part.is_drum else next(melodic)
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=part.name, time=0)])
        track.append(mido.Message("program_change", channel=ch, program=part.program, time=0))
        last = 0
        for ev in sorted(part.events, key=lambda e: (e.time_s, _KIND_ORDER[e.kind])):
            tick = max(int(round(ev.time_s * ticks_per_s)), last)
            delta, last = tick - last, tick
            if ev.kind == "on":
                track.append(mido.Message("note_on", channel=ch, note=ev.a, velocity=ev.b, time=delta))
            elif ev.kind == "off":
                track.append(mido.Message("note_off", channel=ch, note=ev.a, velocity=0, time=delta))
            elif ev.kind == "cc":
                track.append(mido.Message("control_change", channel=ch, control=ev.a, value=ev.b, time=delta))
            else:
                track.append(mido.Message("pitchwheel", channel=ch, pitch=ev.a - 8192, time=delta))
        midi.tracks.append(track)
    if path is not None:
        midi.save(str(path))
    return midi
