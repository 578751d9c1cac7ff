"""A procedural song generator: drums, bass, piano, guitar (and optional strings/pads/leads).

Each song draws a style (rock, pop, funk, ballad, shuffle, dance), tempo, key, mode and chord
progression, a section structure (intro, verses, choruses, bridge, outro) with instruments
entering and leaving, random GM programs within each instrument class, drum grooves with
fills and crashes, bass lines, piano and guitar voicings and rhythms, and velocity and timing
humanisation. Everything is driven by one ``numpy`` random generator, so a seed is a song.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .midi import NoteEvent, Part

MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
         "dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10)}
PROGRESSIONS = {  # scale degrees (0-based), one chord per bar
    "major": ((0, 4, 5, 3), (0, 3, 4, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 0, 3, 4), (5, 3, 0, 4), (0, 2, 3, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 0, 4), (0, 5, 3, 4), (0, 2, 6, 5)),
    "dorian": ((0, 3, 0, 3), (0, 6, 3, 0), (0, 2, 3, 3)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 3), (0, 4, 6, 3)),
}
# GM drum keys
KICK, RIM, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = (
    36, 37, 38, 39, 42, 44, 46, 45, 47, 50, 49, 51)
# 16-step grooves: 'X' accent, 'x' normal, 'o' ghost, '.' rest
GROOVES = {
    "rock": ({KICK: "x.....x.x.......", SNARE: "....X.......X...", CLOSED_HAT: "x.x.x.x.x.x.x.x."},
             {KICK: "x.......x.x.....", SNARE: "....X.......X..o", CLOSED_HAT: "x.x.x.x.x.x.x.x."},
             {KICK: "x..x..x.x.......", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."}),
    "pop": ({KICK: "x.......x.....x.", SNARE: "....X.......X...", CLOSED_HAT: "xxxxxxxxxxxxxxxx"},
            {KICK: "x..x....x.......", CLAP: "....X.......X...", CLOSED_HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.....x...x.....", SNARE: "....X.......X...", CLOSED_HAT: "x.xxx.xxx.xxx.xx"}),
    "funk": ({KICK: "x..x..x...x..x..", SNARE: "....X..o.o..X..o", CLOSED_HAT: "xxxxxxxxxxxxxxxx"},
             {KICK: "x.x....x..x.....", SNARE: "....X.o.....X.o.", CLOSED_HAT: "x.xxx.xxx.xxx.xx",
              OPEN_HAT: "..............x."}),
    "ballad": ({KICK: "x.......x.......", RIM: "........X.......", CLOSED_HAT: "x.x.x.x.x.x.x.x."},
               {KICK: "x.........x.....", SNARE: "........X.......", RIDE: "x...x...x...x..."}),
    "shuffle": ({KICK: "x.......x.......", SNARE: "....x.......x...", RIDE: "x...x.x.x...x.x.",
                 PEDAL_HAT: "....x.......x..."},
                {KICK: "x.....x.........", SNARE: "..o.X..o..o.X...", RIDE: "x...x.x.x...x.x."}),
    "dance": ({KICK: "x...x...x...x...", CLAP: "....X.......X...", OPEN_HAT: "..x...x...x...x."},
              {KICK: "x...x...x...x...", SNARE: "....X.......X...", CLOSED_HAT: "xxxxxxxxxxxxxxxx"}),
}
STYLES = {  # tempo range (BPM), swing (fraction of a 16th), sevenths probability, modes
    "rock": ((100, 150), 0.0, 0.1, ("major", "minor", "mixolydian")),
    "pop": ((85, 125), 0.0, 0.3, ("major", "minor")),
    "funk": ((90, 115), 0.15, 0.7, ("dorian", "minor", "mixolydian")),
    "ballad": ((60, 84), 0.0, 0.5, ("major", "minor")),
    "shuffle": ((100, 170), 0.33, 0.9, ("major", "dorian", "mixolydian")),
    "dance": ((116, 130), 0.0, 0.4, ("minor", "major", "dorian")),
}
SECTION_FORMS = (
    (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 4), ("chorus", 8), ("outro", 4)),
    (("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 2), ("verse", 4), ("chorus", 4), ("bridge", 4), ("verse", 4), ("chorus", 8), ("outro", 2)),
    (("intro", 4), ("chorus", 8), ("bridge", 8), ("chorus", 8)),
)
# probability that each instrument plays in a section type
SECTION_ACTIVITY = {
    "intro": {"drums": 0.5, "bass": 0.5, "piano": 0.7, "guitar": 0.6, "other": 0.6},
    "verse": {"drums": 0.9, "bass": 0.9, "piano": 0.7, "guitar": 0.7, "other": 0.4},
    "chorus": {"drums": 1.0, "bass": 1.0, "piano": 0.9, "guitar": 0.9, "other": 0.7},
    "bridge": {"drums": 0.6, "bass": 0.7, "piano": 0.8, "guitar": 0.6, "other": 0.7},
    "outro": {"drums": 0.6, "bass": 0.6, "piano": 0.8, "guitar": 0.6, "other": 0.5},
}
SECTION_DYNAMICS = {"intro": 0.8, "verse": 0.9, "chorus": 1.1, "bridge": 0.9, "outro": 0.8}
PROGRAMS = {"piano": range(0, 8), "guitar": range(24, 32), "bass": range(32, 40),
            "other": (48, 49, 50, 51, 52, 61, 80, 81, 88, 89, 90, 91, 94, 56, 65, 73)}
DRUM_KITS = (0, 0, 0, 8, 16, 24, 25, 32, 40)  # GM2/GS kits: standard, room, power, electronic, 808, jazz, brush
MAIN = ("drums", "bass", "piano", "guitar")


@dataclass(frozen=True)
class SongPlan:
    """The song-level choices a seed draws (reported in the rendered track's metadata)."""

    style: str
    tempo_bpm: float
    key: int
    mode: str
    progression: tuple[int, ...]
    sections: tuple[tuple[str, int], ...]


class _Song:
    """Builder of one song's parts; times in seconds, humanised when notes are added."""

    def __init__(self, rng: np.random.Generator, seconds: float, kits: tuple[int, ...]) -> None:
        self.rng = rng
        style = str(rng.choice(list(STYLES)))
        (lo, hi), self.swing, self.sevenths, modes = STYLES[style]
        mode = str(rng.choice(modes))
        self.beat_s = 60.0 / float(rng.uniform(lo, hi))
        self.bar_s = 4 * self.beat_s
        self.seconds = seconds
        self.scale = MODES[mode]
        self.key = int(rng.integers(12))
        progression = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
        n_bars = int(np.ceil(seconds / self.bar_s))
        form = SECTION_FORMS[rng.integers(len(SECTION_FORMS))]
        sections, bars = [], 0
        while bars < n_bars:
            for name, length in form:
                if bars >= n_bars:
                    break
                sections.append((name, length))
                bars += length
        self.plan = SongPlan(style, round(60.0 / self.beat_s, 2), self.key, mode, tuple(progression), tuple(sections))
        self.timing_sd_s = float(rng.uniform(0.003, 0.012))
        self.velocity_sd = float(rng.uniform(3, 9))
        self.parts: dict[str, Part] = {}
        self.notes: dict[str, list[tuple[float, float, int, int]]] = {}  # (start s, end s, key, velocity)
        present = {name: rng.random() < (0.95 if name == "drums" else 0.88) for name in MAIN}
        if sum(present.values()) < 2:
            present.update({"drums": True, "bass": True})
        n_other = int(rng.choice([0, 1, 1, 2]))
        programs = {name: int(rng.choice(PROGRAMS[name])) for name in ("piano", "guitar", "bass")}
        for name in MAIN:
            if present[name]:
                program = int(rng.choice(kits)) if name == "drums" else programs[name]
                self.parts[name] = Part(name, program, name == "drums")
        for i in range(n_other):
            self.parts[f"other{i}"] = Part(f"other{i}", int(rng.choice(PROGRAMS["other"])), False)
        for name, part in self.parts.items():  # mix: volume and pan controllers
            pan = 64 if name in ("drums", "bass") else int(np.clip(rng.normal(64, 25), 10, 118))
            part.events += [NoteEvent(0.0, "cc", 7, int(rng.integers(80, 121))), NoteEvent(0.0, "cc", 10, pan)]
        self._variants: dict[tuple[str, int], int] = {}
        self._piano_center = float(rng.uniform(58, 68))

    # -------------------------------------------------------------- helpers
    def chord(self, bar: int, with_seventh: bool) -> list[int]:
        """Pitch classes (relative to C, may exceed 12) of the bar's chord: root, third, fifth[, seventh]."""
        degree = self.plan.progression[bar % len(self.plan.progression)]
        steps = (0, 2, 4, 6) if with_seventh else (0, 2, 4)
        return [self.key + self.scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in steps]

    def step_time(self, bar: int, step: int) -> float:
        """Start of 16th ``step`` (0-15, may run over) of ``bar``, swung."""
        t = bar * self.bar_s + step * self.beat_s / 4
        return t + (self.swing * self.beat_s / 4 if step % 2 == 1 else 0.0)

    def note(self, part: str, start_s: float, duration_s: float, key: int, velocity: float,
             jitter: float = 1.0) -> None:
        start_s = max(0.0, start_s + self.rng.normal(0, self.timing_sd_s * jitter))
        if start_s >= self.seconds:
            return
        vel = int(np.clip(velocity + self.rng.normal(0, self.velocity_sd), 1, 127))
        key = int(np.clip(key, 0, 127))
        self.notes.setdefault(part, []).append((start_s, start_s + max(duration_s, 0.02), key, vel))

    # -------------------------------------------------------------- instruments
    def drums(self, bar: int, section: str, dyn: float, first: bool, last: bool) -> None:
        grooves = GROOVES[self.plan.style]
        groove = grooves[self._variant(section, len(grooves))]
        levels = {"X": 112, "x": 92, "o": 45}
        fill_from = 16 - int(self.rng.choice([4, 8])) if last and self.rng.random() < 0.7 else 16
        for drum, pattern in groove.items():
            for step, c in enumerate(pattern[:fill_from]):
                if c != "." and self.rng.random() > 0.04:
                    self.note("drums", self.step_time(bar, step), 0.1, drum, levels[c] * dyn)
        if fill_from < 16:  # tom/snare fill to the section's end
            toms = [SNARE, HIGH_TOM, MID_TOM, LOW_TOM]
            for i, step in enumerate(range(fill_from, 16)):
                if self.rng.random() < 0.8:
                    drum = toms[min(i * len(toms) // (16 - fill_from), 3)] if self.rng.random() < 0.7 else SNARE
                    self.note("drums", self.step_time(bar, step), 0.1, drum, (85 + 3 * i) * dyn)
        if first:
            self.note("drums", self.step_time(bar, 0), 0.5, CRASH, 105 * dyn)

    def bass(self, bar: int, section: str, dyn: float) -> None:
        root = 28 + (self.chord(bar, False)[0] - 28) % 12
        fifth = root + 7
        style = self.plan.style
        if style == "shuffle":  # walking bass: chord tones and a chromatic approach to the next root
            next_root = 28 + (self.chord(bar + 1, False)[0] - 28) % 12
            tones = [root, root + (self.chord(bar, False)[1] - self.chord(bar, False)[0]), fifth,
                     next_root + int(self.rng.choice([-1, 1]))]
            for beat, key in enumerate(tones):
                self.note("bass", self.step_time(bar, 4 * beat), self.beat_s * 0.9, key, 90 * dyn)
            return
        patterns = {
            "rock": ("R.R.R.R.R.R.R.R.", "R...R.R.R...R.R."),
            "pop": ("R.....R...R.R...", "R..R..R.R..5..R."),
            "funk": ("R..O..R.5.R..O.R", "R.O...RR..5.O..R"),
            "ballad": ("R...............", "R.......5......."),
            "dance": ("..R...R...R...R.", "R.RRR.RRR.RRR.RR"),
        }[style]
        pattern = patterns[self._variant(section, len(patterns))]
        length = {"rock": 0.45, "pop": 0.8, "funk": 0.25, "ballad": 1.9, "dance": 0.4}[style] * self.beat_s
        for step, c in enumerate(pattern):
            if c == ".":
                continue
            key = {"R": root, "5": fifth, "O": root + 12}[c]
            accent = 1.1 if step % 4 == 0 else 0.95
            self.note("bass", self.step_time(bar, step), length, key, 88 * dyn * accent)

    def piano(self, bar: int, section: str, dyn: float) -> None:
        tones = self.chord(bar, self.rng.random() < self.sevenths)
        voicing = self._voice(tones, self._piano_center)
        self._piano_center = float(np.mean(voicing))
        style = self.plan.style
        mode = ("block", "arp", "comp")[self._variant(section, 3)] if style in ("pop", "ballad") else \
            {"rock": "block", "funk": "comp", "shuffle": "comp", "dance": "comp"}[style]
        if mode == "block":
            for beat in range(4):
                for k in voicing:
                    self.note("piano", self.step_time(bar, 4 * beat), self.beat_s * 0.9, k,
                              (80 if beat % 2 else 90) * dyn, jitter=0.5)
        elif mode == "arp":
            order = voicing + voicing[1:-1][::-1]
            for i in range(8):
                self.note("piano", self.step_time(bar, 2 * i), self.beat_s * 1.5, order[i % len(order)], 72 * dyn)
            self.note("piano", self.step_time(bar, 0), self.bar_s, voicing[0] - 12, 70 * dyn)
        else:
            hits = sorted(self.rng.choice(16, size=int(self.rng.integers(3, 6)), replace=False))
            for step in hits:
                for k in voicing:
                    self.note("piano", self.step_time(bar, int(step)), self.beat_s * 0.35, k, 85 * dyn, jitter=0.5)

    def guitar(self, bar: int, section: str, dyn: float) -> None:
        tones = self.chord(bar, self.rng.random() < self.sevenths * 0.5)
        root = 40 + (tones[0] - 40) % 12
        style = self.plan.style
        if style == "rock" and self.rng.random() < 0.8:
            voicing = [root, root + 7, root + 12]  # power chord, eighths
            for step in range(0, 16, 2):
                self._strum(bar, step, voicing, self.beat_s * 0.45, 95 * dyn, down=True)
            return
        voicing = [root] + self._voice(tones, 60.0)[:4]
        if style == "funk":
            for step in range(16):
                if self.rng.random() < 0.55:
                    self._strum(bar, step, voicing[1:], self.beat_s * 0.12, (70 + 25 * (step % 4 == 2)) * dyn,
                                down=step % 2 == 0)
        elif style == "ballad" or self.rng.random() < 0.25:  # picked arpeggio
            for i in range(8):
                self.note("guitar", self.step_time(bar, 2 * i), self.beat_s * 1.2, voicing[(i * 2) % len(voicing)],
                          70 * dyn)
        else:  # strumming pattern: D . D U . U D U
            for step, down in ((0, True), (4, True), (6, False), (10, False), (12, True), (14, False)):
                self._strum(bar, step, voicing, self.beat_s * 0.9, (88 if down else 72) * dyn, down=down)

    def other(self, name: str, bar: int, dyn: float) -> None:
        part = self.parts[name]
        if 80 <= part.program < 88 or 56 <= part.program < 80:  # lead line: a scale walk
            degree = int(self.rng.integers(7))
            for step in range(0, 16, int(self.rng.choice([2, 4]))):
                if self.rng.random() < 0.7:
                    degree = int(np.clip(degree + self.rng.integers(-2, 3), 0, 13))
                    key = 72 + self.key % 12 + self.scale[degree % 7] + 12 * (degree // 7) - 12
                    self.note(name, self.step_time(bar, step), self.beat_s * 0.9, key, 80 * dyn)
        else:  # pad: the chord held for the bar
            for k in self._voice(self.chord(bar, True), 67.0):
                self.note(name, self.step_time(bar, 0), self.bar_s * 0.98, k, 65 * dyn, jitter=0.3)

    # -------------------------------------------------------------- internals
    def _strum(self, bar: int, step: int, voicing: list[int], duration_s: float, velocity: float, down: bool) -> None:
        spread_s = float(self.rng.uniform(0.006, 0.018))
        start = self.step_time(bar, step) + self.rng.normal(0, self.timing_sd_s)
        for i, key in enumerate(voicing if down else voicing[::-1]):
            self.note("guitar", start + i * spread_s, duration_s, key, velocity * (1 - 0.04 * i), jitter=0.0)

    @staticmethod
    def _voice(tones: list[int], center: float) -> list[int]:
        """Close-position voicing of pitch classes ``tones`` whose mean is nearest ``center``."""
        best = None
        for inversion in range(len(tones)):
            notes = [tones[inversion] % 12]
            for t in tones[inversion + 1:] + tones[:inversion]:
                nxt = t % 12
                while nxt <= notes[-1]:
                    nxt += 12
                notes.append(nxt)
            shift = 12 * round((center - np.mean(notes)) / 12)
            cand = [n + shift for n in notes]
            if best is None or abs(np.mean(cand) - center) < abs(np.mean(best) - center):
                best = cand
        return best

    def _variant(self, section: str, count: int) -> int:
        """A pattern variant fixed per section type for this song (verses repeat their groove)."""
        return self._variants.setdefault((section, count), int(self.rng.integers(count)))

    def build(self) -> list[Part]:
        """All sections, bar by bar -> the parts that play at least one note."""
        bar = 0
        for section, length in self.plan.sections:
            active = {name: self.rng.random() < SECTION_ACTIVITY[section]["other" if name.startswith("other")
                                                                          else name]
                      for name in self.parts}
            if sum(active.get(n, False) for n in MAIN) < 2:  # keep at least two main stems playing
                for n in [n for n in MAIN if n in self.parts][:2]:
                    active[n] = True
            dyn = SECTION_DYNAMICS[section] * float(self.rng.uniform(0.9, 1.05))
            for i in range(length):
                if bar * self.bar_s >= self.seconds:
                    break
                for name, on in active.items():
                    if not on:
                        continue
                    if name == "drums":
                        self.drums(bar, section, dyn, first=i == 0, last=i == length - 1)
                    elif name in ("bass", "piano", "guitar"):
                        getattr(self, name)(bar, section, dyn)
                    else:
                        self.other(name, bar, dyn)
                bar += 1
        for name, notes in self.notes.items():
            self.parts[name].events += _note_events(notes)
            self.parts[name].sort()
        return [p for p in self.parts.values() if p.num_notes > 0]


def _note_events(notes: list[tuple[float, float, int, int]]) -> list[NoteEvent]:
    """Note on/off events; a note ends before the next onset of its key, so repeats retrigger cleanly."""
    notes = sorted(notes)
    next_onset: dict[int, float] = {}
    events = []
    for start, end, key, vel in reversed(notes):
        end = min(end, next_onset.get(key, end) - 0.002)
        next_onset[key] = start
        if end > start:
            events += [NoteEvent(start, "on", key, vel), NoteEvent(end, "off", key)]
    return events


def generate_song(seed: int | np.random.Generator, seconds: float,
                  drum_kits: tuple[int, ...] = DRUM_KITS) -> tuple[SongPlan, list[Part]]:
    """A procedural song of ``seconds`` seconds: its plan and its instrument parts (times in s).

    ``drum_kits``: the GM drum-kit programs to draw from (those the soundfont has).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    song = _Song(rng, seconds, drum_kits)
    return song.plan, song.build()
