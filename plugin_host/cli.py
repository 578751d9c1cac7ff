"""Subcommands of the ``plugin_host`` package: ``separate`` (files) and ``bench-host`` (speed)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import model

from stemstream_cli import stopped_by

from .audio_io import OUTPUT_FORMATS

DEVICES = ("cpu", "cuda")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    p = subparsers.add_parser(
        "separate", help="separate audio files into stems",
        description="Separate audio files (wav, flac, mp3, ogg, or the mixture of a .stem.mp4) into stems: "
                    "OUT/NAME/STEM.EXT per stem, or one Native Instruments OUT/NAME.stem.mp4 per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files; also folders (searched recursively), quoted glob patterns and @LIST files "
                        "(one input per line), which separate them as a resumable catalogue (docs/plugin_host.md)")
    p.add_argument("--model", default=model.DEFAULT_MODEL,
                   help=f"shipped model name or checkpoint directory (default: {model.DEFAULT_MODEL})")
    p.add_argument("--stems", default=None, help="comma-separated stems to write (default: all of the model's)")
    p.add_argument("--out", default="separated", help="output directory (default: separated)")
    p.add_argument("--format", default="wav", choices=OUTPUT_FORMATS, help="output format (default: wav)")
    p.add_argument("--chain", default=None, metavar="FILE",
                   help="JSON or YAML file of pedalboard effect chains for stems and/or the mix")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="where the model runs (default: cpu)")
    p.add_argument("--n-q", type=int, default=None, help="number of quantizers to use (default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (inputs are never replaced)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="separate what decodes of a truncated or corrupt input, with a warning (default: an error)")
    p.add_argument("--normalize", action="store_true",
                   help="scale input above full scale down to 0 dBFS (default: such input gives 32-bit float wav)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="catalogue: separate N files at a time in worker processes (rerun to resume)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="catalogue: one Ray task per file; 'local' starts a local Ray instance, 'auto' joins a "
                        "running cluster (else starts one), or a cluster address (pip install 'stemstream[ray]')")
    # bad arguments, inputs, models, stems or chain files: "stemstream separate: error: ..." (status 2)
    p.set_defaults(func=run_separate, user_errors=(ValueError,))

    b = subparsers.add_parser(
        "bench-host", help="realtime factor of StemSeparator.process on a stereo signal, as JSON",
        description="Time plugin_host.StemSeparator.process on random stereo audio (random-weight model of the "
                    "given configuration unless --model is a checkpoint) and write the figures as JSON.")
    b.add_argument("--model", default=None, help="checkpoint directory or shipped name (default: random weights, "
                                                 "default musdb config)")
    b.add_argument("--seconds", type=float, default=30.0, help="signal length (default: 30)")
    b.add_argument("--sample-rate-hz", type=int, default=44100, help="host sample rate (default: 44100)")
    b.add_argument("--buffer-size", type=int, default=8192, help="buffer_size passed to process (default: 8192)")
    b.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default: 3)")
    b.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    b.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    b.set_defaults(func=run_bench)


def _check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments (checked before any work), or None."""
    from model.audio_io import AudioReadError, check_audio_path

    if args.n_q is not None and args.n_q < 1:
        return f"--n-q must be a positive number of quantizers, got {args.n_q}"
    if args.stems is not None and not [s for s in args.stems.split(",") if s.strip()]:
        return "--stems is empty: name stems separated by commas (e.g. --stems vocals,drums) or leave it out"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder; choose a folder"
    if args.chain is not None and not Path(args.chain).is_file():
        return f"--chain {args.chain}: no such file; give the path of a JSON or YAML chain file"
    bad = []
    for name in args.inputs:
        try:
            check_audio_path(Path(name))
        except (AudioReadError, OSError) as exc:
            bad.append(str(exc))
    if bad:
        return "bad input(s): " + "; ".join(bad)
    return None


def _progress_bars(quiet: bool):
    """``progress(path, index, count)`` for :func:`separate_files`: a tqdm bar per file in seconds of audio."""
    if quiet:
        return None
    from tqdm import tqdm

    def for_file(path: Path, index: int, count: int):
        bars: dict[str, tqdm] = {}

        def update(phase: str, done_s: float, total_s: float) -> None:
            bar = bars.get(phase)
            if bar is None:
                for old in bars.values():
                    old.close()
                bar = bars[phase] = tqdm(total=round(total_s, 1) or None, unit="s", unit_scale=False,
                                         desc=f"[{index + 1}/{count}] {phase} {path.name}", leave=phase == "separating",
                                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s "
                                                    "[{elapsed}<{remaining}, {rate_fmt}]")
            bar.update(round(done_s, 1) - bar.n)
            if phase == "separating" and done_s >= total_s:
                bar.close()

        return update

    return for_file


def run_separate(args: argparse.Namespace) -> int:
    from .catalogue import is_catalogue, run_from_args

    if is_catalogue(args.inputs, args.jobs, args.ray):
        return run_from_args(args)
    problem = _check_args(args)
    if problem is not None:
        raise ValueError(problem)
    try:
        return _separate(args)
    except KeyboardInterrupt:  # while loading the model: nothing was written yet
        how, status = stopped_by()
        print(f"stopped by {how} before any input was separated; nothing was written", file=sys.stderr)
        return status


def _separate(args: argparse.Namespace) -> int:
    from .batch import SeparateOptions, separate_files
    from .chain_spec import load_chain_spec
    from .separator import StemSeparator

    stems = [s.strip() for s in args.stems.split(",") if s.strip()] if args.stems else None
    try:
        separator = StemSeparator(args.model, stems=stems, device=args.device, n_q=args.n_q)
        spec = load_chain_spec(args.chain, separator.model_stems) if args.chain else None
    except (TypeError, RuntimeError) as exc:  # CheckpointError and ChainSpecError are ValueErrors: they pass as they are
        raise ValueError(str(exc)) from exc
    if args.format == "stem.mp4" and len(separator.stems) != 4:
        raise ValueError(f"a .stem.mp4 holds exactly 4 stems but {len(separator.stems)} are selected "
                         f"({', '.join(separator.stems)}); pick four with --stems or use --format wav")
    options = SeparateOptions(args.format, args.overwrite, args.allow_damaged, args.normalize)
    results = separate_files(separator, args.inputs, args.out, args.format, spec, options,
                             progress=_progress_bars(args.quiet))
    return _summary(results)


def _summary(results: list) -> int:
    """Print what became of every input; the exit status (0, 1 failures, 130 Ctrl-C / 143 SIGTERM)."""
    for r in results:
        if r.status == "done":
            print(f"{r.input} -> {', '.join(str(o) for o in r.outputs)}")
            for note in r.report.warnings:
                print(f"warning: {r.input}: {note}", file=sys.stderr)
        elif r.status == "failed":
            print(f"FAILED {r.input}: {r.error}", file=sys.stderr)
    by_status = {s: [r for r in results if r.status == s] for s in ("done", "failed", "interrupted", "not started")}
    stopped = by_status["interrupted"] or by_status["not started"]
    if stopped:
        how, status = stopped_by()
        print(f"stopped by {how}: {len(by_status['done'])} input(s) done, {len(by_status['failed'])} failed, "
              f"{len(by_status['interrupted'])} interrupted (its partial outputs removed), "
              f"{len(by_status['not started'])} not started", file=sys.stderr)
        return status
    if by_status["failed"]:
        print(f"{len(by_status['failed'])} of {len(results)} input(s) failed: "
              f"{', '.join(str(r.input) for r in by_status['failed'])}", file=sys.stderr)
        return 1
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from .bench import bench_separator, write_json

    result = bench_separator(args.model, seconds=args.seconds, sample_rate_hz=args.sample_rate_hz,
                             buffer_size=args.buffer_size, repeats=args.repeats, threads=args.threads)
    print(write_json(result, args.out))
    return 0
