"""Subcommands of the ``latency`` package: ``profile`` and ``roundtrip``.

Handlers import their modules lazily, so ``python -m latency profile`` needs only torch,
numpy and this project (matplotlib for ``--plot``), as on a bare GPU machine. What a handler
raises of its ``user_errors`` is reported by the dispatcher (``stemstream_cli.run_command``) as
``stemstream CMD: error: MESSAGE`` with status 2.
"""
from __future__ import annotations

import argparse
import sys


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, e.g. 64,128,256; got {text!r}")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _add_subject_arguments(p: argparse.ArgumentParser) -> None:
    """``--model`` or ``--config-json``: what :func:`latency.subject.load_subject` loads."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="shipped model name or checkpoint directory (default: the shipped default)")
    src.add_argument("--config-json", metavar="PATH|default",
                     help="random weights of this SeparatorConfig JSON ('default': SeparatorConfig())")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    p = subparsers.add_parser(
        "profile", help="per-block compute time of the separator (p50/p95/p99/max, load, deadline misses)",
        description="Feed blocks of noise to the streaming separator and time every call. Block sizes are "
                    "in samples at the model's rate. Writes one JSON row per mode x channels x block.")
    _add_subject_arguments(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--mode", type=_name_list, default=None,
                   help="comma list of eager, graph (CUDA graph), compiled (torch.compile), compiled-graph, "
                        "numba (numba CPU kernels); default: what the runtime runs by default on the "
                        "device (numba on cpu, graph on cuda)")
    p.add_argument("--blocks", type=_int_list, default=[64, 128, 256, 512, 1024],
                   help="comma list of block sizes in samples (default 64,128,256,512,1024)")
    p.add_argument("--channels", type=_int_list, default=[1], help="comma list of channel counts (default 1)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio measured per configuration (default 20)")
    p.add_argument("--warmup-seconds", type=float, default=1.0, help="audio run before measuring (default 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1, as the engine's worker runs on the CPU)")
    p.add_argument("--n-q", type=int, help="quantizers to use (default: all)")
    p.add_argument("--json", required=True, help="output JSON file (a list of rows)")
    p.add_argument("--plot", help="output PNG: histogram and timeline per configuration")
    # ValueError: bad arguments, ModeError, CheckpointError; ImportError: --plot without matplotlib
    p.set_defaults(func=_profile, user_errors=(ValueError, ImportError))

    r = subparsers.add_parser(
        "roundtrip", help="measure the live engine's latency through JACK and compare it with the reported one",
        description="Play impulses and a sweep through the live engine on the running JACK server (PortAudio's "
                    "default devices), find them by cross-correlation, and set the measured delay beside the "
                    "reported latency split into its parts. Exit code 0 when they agree within one sample, 1 when not.")
    _add_subject_arguments(r)
    r.add_argument("--path", choices=("wet", "dry"), default="wet",
                   help="wet: the separated stems (all at 0 dB); dry: the input through the same pipeline")
    r.add_argument("--prefill-samples", type=int, help="worker mode: the engine's output prefill (default: two blocks)")
    r.add_argument("--mode", choices=("auto", "callback", "worker"), default="auto",
                   help="the engine's mode (default auto: callback when the pipeline fits in the callback)")
    r.add_argument("--attempts", type=int, default=5, help="runs to try when xruns disturb one (default 5)")
    r.add_argument("--json", required=True, help="output JSON file")
    from .jackio import JackProbeError

    r.set_defaults(func=_roundtrip, user_errors=(ValueError, JackProbeError))


def _profile(args: argparse.Namespace) -> int:
    import torch

    from .modes import check_mode
    from .profile import run_profile, write_json
    from .subject import load_subject

    if args.seconds <= 0 or args.warmup_seconds < 0:
        raise ValueError(f"--seconds must be > 0 and --warmup-seconds >= 0 (got {args.seconds}, {args.warmup_seconds})")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.mode is None:
        args.mode = ["numba"] if args.device == "cpu" else ["graph"]
    for mode in args.mode:
        check_mode(args.device, mode)
    net, info = load_subject(args.model, args.config_json)
    tty = sys.stderr.isatty()  # the in-place call counter only on a terminal, not in logs

    def log(line: str) -> None:
        print(f"\r{line:<100}" if tty else line, file=sys.stderr, flush=True)

    def progress(done: int, total: int) -> None:
        print(f"\r  {done}/{total} calls", end="", file=sys.stderr, flush=True)

    print(f"profiling {info.label} ({net.num_parameters():,} parameters"
          f"{', random weights' if info.random_weights else ''}) with {torch.get_num_threads()} torch thread(s)",
          file=sys.stderr)
    results = run_profile(net, info, args.device, args.mode, args.blocks, args.channels, args.seconds,
                          args.warmup_seconds, args.n_q, log=log, progress=progress if tty else None)
    print(f"wrote {write_json(results, args.json)}", file=sys.stderr)
    if args.plot:
        try:
            from .plot import plot_profile
        except ImportError as exc:
            raise ImportError(f"--plot needs matplotlib ({exc}); pip install matplotlib, or drop --plot") from exc
        print(f"wrote {plot_profile(results, args.plot)}", file=sys.stderr)
    return 0


def _roundtrip(args: argparse.Namespace) -> int:
    import json
    import math
    from pathlib import Path

    import model
    from rt.live import LiveError

    from .jackio import JackProbeError
    from .roundtrip import format_result, measure_roundtrip
    from .subject import load_subject

    if args.attempts < 1 or (args.prefill_samples is not None and args.prefill_samples < 0):
        raise ValueError("--attempts must be >= 1 and --prefill-samples >= 0")
    net, info = load_subject(args.model, args.config_json)
    runtime = model.StreamingSeparator(net)
    try:
        result = measure_roundtrip(runtime, args.path, info.label, info.random_weights, args.prefill_samples,
                                   args.attempts, log=lambda line: print(line, file=sys.stderr), mode=args.mode)
    except LiveError as exc:  # the audio side failed; rt is imported only here (profile runs without it)
        raise JackProbeError(str(exc)) from exc
    print(format_result(result))
    data = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.to_dict().items()}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0 if result.agree else 1
