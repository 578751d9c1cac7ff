"""Rendering a Slakh-style dataset: procedural songs and/or user MIDI files -> Slakh2100 layout."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fluid import FluidSynth
from .generator import DRUM_KITS, generate_song
from .midi import read_parts
from .writer import METADATA_FILE, write_track

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TEST_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
DEFAULT_SAMPLE_RATE_HZ = 44100  # Slakh2100's rate; readers resample to the model's 22.05 kHz
MIDI_TAIL_S = 1.5  # rendered after a MIDI file's last event, for release tails


@dataclass(frozen=True)
class RenderReport:
    """What a render did: tracks written (and skipped as already complete), seconds of audio
    rendered, and the time it took: ``cpu_s`` (this process, soundfont loading included),
    ``wall_s``, and ``soundfont_load_cpu_s`` (the one-off part of ``cpu_s``)."""

    tracks_written: int
    tracks_skipped: int
    audio_s: float
    cpu_s: float
    wall_s: float
    soundfont_load_cpu_s: float

    @property
    def realtime_factor_cpu(self) -> float:
        """Seconds of song audio rendered per CPU second (one core)."""
        return self.audio_s / self.cpu_s if self.cpu_s > 0 else float("inf")


def render_dataset(out: str | Path, tracks: int, seconds: float | None, soundfont: str | Path = DEFAULT_SOUNDFONT,
                   midi_files: Sequence[str | Path] = (), seed: int = 0,
                   sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ,
                   progress: Callable[[str], None] | None = None) -> RenderReport:
    """Render ``tracks`` procedural songs of ``seconds`` s, then every file of ``midi_files``.

    Tracks are ``out/Track00001`` ... in the Slakh2100 layout. Procedural track ``i`` is drawn
    from ``numpy.random.default_rng([seed, i])``, so any track can be re-rendered alone, and a
    track whose ``metadata.yaml`` exists is skipped (an interrupted render resumes). MIDI files
    are rendered whole, or cut to ``seconds`` when it is given.
    """
    if tracks < 0:
        raise ValueError(f"tracks must be >= 0, got {tracks}")
    if tracks and not seconds:
        raise ValueError("procedural tracks need a length: pass seconds (--seconds) > 0")
    if tracks == 0 and not midi_files:
        raise ValueError("nothing to render: ask for procedural tracks (--tracks N) or pass MIDI files (--midi)")
    midi_parts = [(Path(f), read_parts(f)) for f in midi_files]  # fail on a bad file before rendering
    for path, parts in midi_parts:
        if not parts:
            raise ValueError(f"{path} has no notes to render")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    written = skipped = 0
    audio_s = 0.0
    with FluidSynth(soundfont, sample_rate_hz) as probe:
        load_cpu_s = time.process_time() - cpu0
        kits = tuple(k for k in sorted(set(DRUM_KITS)) if probe.has_preset(k, is_drum=True)) or (0,)
    jobs = [None] * tracks + midi_parts  # None: a procedural song
    for index, midi_item in enumerate(jobs):
        name = f"Track{index + 1:05d}"
        directory = out / name
        if (directory / METADATA_FILE).is_file():
            skipped += 1
            continue
        rng = np.random.default_rng([seed, index])
        if midi_item is None:
            plan, parts = generate_song(rng, seconds, kits)
            length_s, tempo_bpm = seconds, plan.tempo_bpm
            source = {"generator": "stemstream", "seed": [seed, index], "style": plan.style,
                      "tempo_bpm": plan.tempo_bpm, "key": plan.key, "mode": plan.mode,
                      "progression": list(plan.progression), "sections": [list(s) for s in plan.sections]}
        else:
            path, parts = midi_item
            last_s = max(e.time_s for p in parts for e in p.events)
            length_s = min(last_s + MIDI_TAIL_S, seconds) if seconds else last_s + MIDI_TAIL_S
            tempo_bpm = 120.0
            source = {"midi_file": str(path.resolve())}
        n = int(round(length_s * sample_rate_hz))
        # a new synthesizer per track: FluidSynth carries state from one render to the next that
        # its reset does not clear (its 64-sample block phase, which moves every note onset, and
        # residues of earlier voices), so a track renders the same alone as in a longer run
        with FluidSynth(soundfont, sample_rate_hz) as synth:
            audio = [synth.render(p.events, p.program, p.is_drum, n) for p in parts]
        keep = [i for i, a in enumerate(audio) if a.any()]  # parts silent in this excerpt
        if not keep:
            raise ValueError(f"{name} ({source}) renders to silence: the soundfont has no sound for its parts")
        parts = [parts[i] for i in keep]
        audio = [audio[i] for i in keep]
        write_track(directory, parts, audio, sample_rate_hz, peak_db=float(rng.uniform(-6.0, -1.0)),
                    tempo_bpm=tempo_bpm, source=source, plugin_name=Path(soundfont).name)
        written += 1
        audio_s += length_s
        if progress is not None:
            progress(f"{name}: {len(parts)} stems, {length_s:.1f} s ({source.get('style', 'midi')})")
    return RenderReport(written, skipped, audio_s, time.process_time() - cpu0, time.perf_counter() - wall0,
                        load_cpu_s)
