"""Subcommands of the ``model`` package: ``render`` (Slakh-style data) and ``eval``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    _add_render(subparsers)


def _add_render(subparsers: argparse._SubParsersAction) -> None:
    from .render.dataset import DEFAULT_SAMPLE_RATE_HZ, DEFAULT_SOUNDFONT

    p = subparsers.add_parser(
        "render", help="render Slakh-style multitracks (procedural songs and/or MIDI files) with FluidSynth",
        description="Render MIDI per instrument with FluidSynth and a GM soundfont into the Slakh2100 layout "
                    "(TrackNNNNN/mix.flac, stems/SNN.flac, MIDI/, metadata.yaml).")
    p.add_argument("--out", required=True, type=Path, help="output folder (tracks go to OUT or OUT/SPLIT)")
    p.add_argument("--tracks", type=int, default=0, help="number of procedural songs (default 0)")
    p.add_argument("--seconds", type=float, default=None,
                   help="length of each procedural song; MIDI files are cut to it when given")
    p.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT, help=f"GM .sf2 (default {DEFAULT_SOUNDFONT})")
    p.add_argument("--midi", nargs="+", default=[], type=Path, metavar="FILE", help="MIDI files to render too")
    p.add_argument("--seed", type=int, default=0, help="procedural track i is drawn from seed (seed, i)")
    p.add_argument("--split", default=None, help="write into OUT/SPLIT (e.g. train, test)")
    p.add_argument("--sample-rate-hz", type=int, default=DEFAULT_SAMPLE_RATE_HZ,
                   help=f"rate of the rendered audio (default {DEFAULT_SAMPLE_RATE_HZ}, Slakh's)")
    p.add_argument("--quiet", action="store_true", help="no per-track progress lines")
    p.set_defaults(func=_run_render)


def _run_render(args: argparse.Namespace) -> int:
    from .render.dataset import render_dataset

    out = args.out / args.split if args.split else args.out
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    try:
        report = render_dataset(out, args.tracks, args.seconds, args.soundfont, args.midi, args.seed,
                                args.sample_rate_hz, progress)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"stemstream render: error: {exc}", file=sys.stderr)
        return 2
    print(f"{report.tracks_written} track(s) written to {out} ({report.tracks_skipped} already there), "
          f"{report.audio_s:.0f} s of audio in {report.wall_s:.1f} s wall / {report.cpu_s:.1f} s CPU "
          f"({report.realtime_factor_cpu:.1f}x real time on one core)")
    return 0
