"""Subcommands of :mod:`model.training`: ``render`` (Slakh-style data), ``eval``, ``train``, ``pack``,
``curves``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    _add_render(subparsers)
    _add_eval(subparsers)
    _add_train(subparsers)
    _add_pack(subparsers)
    _add_curves(subparsers)


# what each subcommand reports as the user's to fix: ``stemstream`` prints "stemstream CMD: error: ..." (status 2)
_DATA_ERRORS = (ValueError, FileNotFoundError)  # CheckpointError is a ValueError
_RENDER_ERRORS = (*_DATA_ERRORS, RuntimeError)  # RuntimeError: libfluidsynth missing or failing
_EVAL_ERRORS = (*_DATA_ERRORS, RuntimeError)    # RuntimeError: ffmpeg missing or failing, or no CUDA device


def _add_data_arguments(p: argparse.ArgumentParser, packed: bool = False, required: bool = True) -> None:
    """``--data`` and ``--format`` (a layout of :data:`FORMATS`, or ``packed`` where the command reads it)."""
    from .data.readers import FORMATS

    p.add_argument("--data", required=required, help="data folder" + (" or packed .npz" if packed else ""))
    p.add_argument("--format", required=required, choices=(*FORMATS, "packed") if packed else tuple(FORMATS),
                   help="data layout" + (" (packed: a file written by `stemstream pack`)" if packed else ""))


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
    p.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="write the render's timings (audio seconds, CPU and wall seconds) as JSON")
    p.set_defaults(func=_run_render, user_errors=_RENDER_ERRORS)


def _run_render(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import os

    from .render.dataset import render_dataset

    out = args.out / args.split if args.split else args.out
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    report = render_dataset(out, args.tracks, args.seconds, args.soundfont, args.midi, args.seed,
                            args.sample_rate_hz, progress)
    print(f"{report.tracks_written} track(s) written to {out} ({report.tracks_skipped} already there), "
          f"{report.audio_s:.0f} s of audio in {report.wall_s:.1f} s wall / {report.cpu_s:.1f} s CPU "
          f"({report.realtime_factor_cpu:.1f}x real time on one core)")
    if args.json is not None:
        steady_cpu_s = report.cpu_s - report.soundfont_load_cpu_s
        payload = {**dataclasses.asdict(report), "realtime_factor_cpu": report.realtime_factor_cpu,
                   "realtime_factor_cpu_after_load": report.audio_s / steady_cpu_s if steady_cpu_s > 0 else None,
                   "realtime_factor_wall": report.audio_s / report.wall_s if report.wall_s > 0 else None,
                   "soundfont": str(args.soundfont), "sample_rate_hz": args.sample_rate_hz,
                   "load_average_1min": os.getloadavg()[0]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="score separators on multitrack data (windowed SI-SDRi, museval SDR)",
        description="Run each model causally over whole tracks and score it with the paper's protocol "
                    "(SI-SDR improvement on 4 s windows, 2 s hop) and museval's BSSEval v4 SDR.")
    p.add_argument("--model", required=True, nargs="+", metavar="NAME_OR_PATH",
                   help="shipped model name or checkpoint folder; 'mixture' is the mixture-as-estimate "
                        "baseline; several models are scored on the same tracks side by side")
    _add_data_arguments(p)
    p.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="write the scores as JSON (one object; a list of objects for several models)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N tracks")
    p.add_argument("--tracks", default=None,
                   help="comma-separated track names to score, or @FILE: one name per line (names with "
                        "commas; a run's valid_tracks.txt)")
    p.add_argument("--no-sdr", action="store_true", help="skip museval's SDR (slow: about 5 s per stem-minute)")
    p.add_argument("--channels", type=int, default=2, help="channels read from the data (each scored as mono)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the models run (default cpu)")
    p.add_argument("--sample-rate-hz", type=int, default=None,
                   help="rate for the 'mixture' baseline (default: the default model config's)")
    p.add_argument("--n-q", type=int, default=None,
                   help="run the models with their first N quantizers (default: all; for the n_q curve)")
    p.add_argument("--oracle", choices=("psm", "irm"), default=None,
                   help="score each mask model's ideal masks (from the true stems) over its own basis and "
                        "synthesis instead of its network: the ceiling of its output head ('mixture' stays "
                        "the baseline)")
    p.set_defaults(func=_run_eval, user_errors=_EVAL_ERRORS)


def _track_names(spec: str) -> list[str]:
    """``--tracks``: ``"a,b"`` -> names; ``"@FILE"`` -> the file's non-empty lines (names may hold commas)."""
    if not spec.startswith("@"):
        return [n.strip() for n in spec.split(",") if n.strip()]
    path = Path(spec[1:])
    if not path.is_file():
        raise ValueError(f"--tracks {spec}: no file {path}; give @FILE with one track name per line")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"--tracks {spec}: {path} names no track; write one track name per line")
    return names


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import MIXTURE_BASELINE, evaluate, format_table

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be 1 or more tracks, got {args.limit}")
    if args.channels < 1 or (args.sample_rate_hz is not None and args.sample_rate_hz < 1):
        raise ValueError("--channels and --sample-rate-hz must be positive")
    names = _track_names(args.tracks) if args.tracks else None
    results = [evaluate(name, args.data, args.format, args.limit, names, sdr=not args.no_sdr, channels=args.channels,
                        device=args.device, sample_rate_hz=args.sample_rate_hz, n_q=args.n_q,
                        oracle=None if name == MIXTURE_BASELINE else args.oracle,
                        progress=lambda line, m=name: print(f"[{m}] {line}", file=sys.stderr))
               for name in args.model]
    print(format_table(results))
    if args.json is not None:
        payload = results[0].to_json() if len(results) == 1 else [r.to_json() for r in results]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    from .data.readers import FORMATS
    from .train import PRESETS, RESUME_CHANGES, TrainSettings

    defaults = TrainSettings(data="", format="", out="")
    p = subparsers.add_parser(
        "train", help="train a separator (CPU, CUDA with bf16, or several processes under torchrun)",
        description="Train with the paper's losses and RVQ procedures; checkpoints to OUT/checkpoint.pt, "
                    "the EMA weights to OUT/export (loadable with model.load), logs to OUT/log.csv and "
                    "OUT/valid.csv. Under torchrun each process is one DDP rank.")
    p.add_argument("--config", default=defaults.config,
                   help=f"preset ({', '.join(PRESETS)}) or SeparatorConfig JSON (default {defaults.config})")
    _add_data_arguments(p, packed=True, required=False)  # a resumed run knows its data
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt with its settings; only --steps, --max-minutes, "
                        "--max-cpu-minutes, --threads, --data and --format may change, where given")
    for name in ("steps", "batch_size", "segment_s", "lr", "warmup_steps", "valid_tracks", "valid_every",
                 "checkpoint_every", "seed", "threads", "remix_prob", "ema_decay", "grad_clip", "max_minutes",
                 "max_cpu_minutes", "log_mel_weight", "snr_weight", "extra_share"):
        value = getattr(defaults, name)
        # None: not given, so a resumed run keeps its own value and a new run takes the default
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=None,
                       help=f"default {value}" + (" (with --resume: the run's own)" if name in RESUME_CHANGES else ""))
    p.add_argument("--stem-weights", default=None, metavar="STEM=W,...",
                   help="weigh stems' losses, e.g. other=2 (unnamed stems 1; default all equal)")
    p.add_argument("--extra-data", default=None, metavar="DIR",
                   help="a second data set mixed into training (not validated on), its tracks seen through "
                        "the model's stems: a missing 'other' holds everything the others leave out")
    p.add_argument("--extra-format", default=None, choices=(*FORMATS, "packed"), help="layout of --extra-data")
    p.add_argument("--init-from", default="", metavar="MODEL",
                   help="start from a trained model (shipped name or directory) of the same architecture, "
                        "or the same with a longer analysis basis, more basis rows, an added level generator, "
                        "residual units added after its own (each starts as the identity), or a whole multiple "
                        "of its rate (first stride as many times longer); stems it lacks start from its 'other' stem")
    p.set_defaults(func=_run_train, user_errors=_DATA_ERRORS)


def _run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from .train import RESUME_CHANGES, TrainSettings, resumed_settings, train

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        settings = resumed_settings(args.out, **{k: v for k, v in given.items() if k in RESUME_CHANGES})
    elif "data" not in given or "format" not in given:
        raise ValueError("--data and --format are needed to start a run (with --resume they come from the run)")
    else:
        settings = TrainSettings(**given)
    last = train(settings, resume=args.resume)
    print("last step: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    return 0


def _add_pack(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pack", help="pack multitrack data as mono 8-bit mu-law (compact data for a GPU machine)",
        description="Read every track of a data folder at the model rate, mix it down to mono and write "
                    "8-bit mu-law stems into one .npz that `stemstream train --format packed` reads.")
    _add_data_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.add_argument("--sample-rate-hz", type=int, default=22050, help="rate to store (default 22050)")
    p.set_defaults(func=_run_pack, user_errors=_DATA_ERRORS)


def _run_pack(args: argparse.Namespace) -> int:
    from .data.packed import pack_tracks
    from .train import load_tracks

    tracks = load_tracks(args.data, args.format, args.sample_rate_hz)
    out = pack_tracks(tracks, args.out)
    print(f"{len(tracks)} tracks packed into {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _add_curves(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "curves", help="plot training runs' validation curves (OUT/valid.csv) side by side",
        description="Plot each run's mean and per-stem validation SI-SDRi against its steps and print its "
                    "last and best rows and the slope of its last points (dB per 1,000 steps).")
    p.add_argument("runs", nargs="+", metavar="RUN[@OFFSET][=LABEL]",
                   help="a run folder; @OFFSET adds the steps it was warm-started after; =LABEL names it")
    p.add_argument("--png", required=True, type=Path, help="figure to write")
    p.add_argument("--target-db", type=float, default=None, help="draw the target mean as a line")
    p.add_argument("--stem-target-db", type=float, default=None, help="draw every stem's target as a line")
    p.add_argument("--title", default="validation SI-SDRi", help="figure title")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the summaries as JSON")
    p.set_defaults(func=_run_curves, user_errors=_DATA_ERRORS)


def _run_curves(args: argparse.Namespace) -> int:
    from .curves import RunSpec, plot_curves, summaries_json

    summaries = plot_curves([RunSpec.parse(r) for r in args.runs], args.png, args.target_db,
                            args.stem_target_db, args.title)
    for s in summaries:
        print(f"{s.label}: steps {s.first_step}-{s.last_step}, last {s.last_mean_db:.2f} dB, best {s.best_mean_db:.2f} dB "
              f"at {s.best_step}, slope {s.slope_db_per_1000_steps:+.2f} dB per 1,000 steps")
    if args.json:
        args.json.write_text(summaries_json(summaries) + "\n")
    print(f"wrote {args.png}")
    return 0
