"""Subcommands of the ``plugin_host`` package: ``separate`` (files) and ``bench-host`` (speed)."""
from __future__ import annotations

import argparse
import sys

import model

from .audio_io import OUTPUT_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    p = subparsers.add_parser(
        "separate", help="separate audio files into stems",
        description="Separate audio files (wav, flac, mp3, ogg, or the mixture of a .stem.mp4) into stems: "
                    "OUT/NAME/STEM.EXT per stem, or one Native Instruments OUT/NAME.stem.mp4 per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files to separate")
    p.add_argument("--model", default=model.DEFAULT_MODEL,
                   help=f"shipped model name or checkpoint directory (default: {model.DEFAULT_MODEL})")
    p.add_argument("--stems", default=None, help="comma-separated stems to write (default: all of the model's)")
    p.add_argument("--out", default="separated", help="output directory (default: separated)")
    p.add_argument("--format", default="wav", choices=OUTPUT_FORMATS, help="output format (default: wav)")
    p.add_argument("--chain", default=None, metavar="FILE",
                   help="JSON or YAML file of pedalboard effect chains for stems and/or the mix")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--n-q", type=int, default=None, help="number of quantizers to use (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_separate)

    b = subparsers.add_parser(
        "bench-host", help="realtime factor of StemSeparator.process on a stereo signal, as JSON",
        description="Time plugin_host.StemSeparator.process on random stereo audio (random-weight model of the "
                    "given configuration unless --model is a checkpoint) and write the figures as JSON.")
    b.add_argument("--model", default=None, help="checkpoint directory or shipped name (default: random weights, "
                                                 "default musdb config)")
    b.add_argument("--seconds", type=float, default=30.0, help="signal length (default: 30)")
    b.add_argument("--sample-rate", type=int, default=44100, help="host sample rate (default: 44100)")
    b.add_argument("--buffer-size", type=int, default=8192, help="buffer_size passed to process (default: 8192)")
    b.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default: 3)")
    b.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    b.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    b.set_defaults(func=run_bench)


def run_separate(args: argparse.Namespace) -> int:
    from .batch import separate_files
    from .chain_spec import ChainSpecError, load_chain_spec
    from .separator import StemSeparator

    stems = [s.strip() for s in args.stems.split(",") if s.strip()] if args.stems else None
    try:
        separator = StemSeparator(args.model, stems=stems, device=args.device, n_q=args.n_q)
        spec = load_chain_spec(args.chain, separator.model_stems) if args.chain else None
    except (model.CheckpointError, ChainSpecError, ValueError, TypeError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "stem.mp4" and len(separator.stems) != 4:
        print(f"error: a .stem.mp4 holds exactly 4 stems but {len(separator.stems)} are selected "
              f"({', '.join(separator.stems)}); pick four with --stems or use --format wav", file=sys.stderr)
        return 2
    results = separate_files(separator, args.inputs, args.out, args.format, spec, progress=not args.quiet)
    failed = [r for r in results if r.error]
    for r in results:
        if r.error:
            print(f"FAILED {r.input}: {r.error}", file=sys.stderr)
        else:
            print(f"{r.input} -> {', '.join(str(o) for o in r.outputs)}")
    if failed:
        print(f"{len(failed)} of {len(results)} input(s) failed: {', '.join(str(r.input) for r in failed)}",
              file=sys.stderr)
        return 1
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from .bench import bench_separator, write_json

    result = bench_separator(args.model, seconds=args.seconds, sample_rate_hz=args.sample_rate,
                             buffer_size=args.buffer_size, repeats=args.repeats, threads=args.threads)
    print(write_json(result, args.out))
    return 0
