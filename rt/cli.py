"""Subcommands of the ``rt`` package: ``live`` (the real-time engine) and ``devices``."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ENGINE_BLOCK_SAMPLES = 256  # the engine's block when the device's block is variable (--blocksize 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
    _add_live(subparsers)
    p = subparsers.add_parser("devices", help="list audio devices (PortAudio) and MIDI input ports (JACK MIDI)")
    p.set_defaults(func=_run_devices)


def _add_live(subparsers: argparse._SubParsersAction) -> None:
    from model import DEFAULT_MODEL

    p = subparsers.add_parser(
        "live", help="separate stems live from an audio input (or a file) to an audio output",
        description="Run the real-time engine: device input -> streaming separator -> chosen stems -> device "
                    "output, with a one-line status (load, underruns, xruns, latency). Ctrl-C stops. With "
                    "--input-file/--output-file the same engine runs from a file, as fast as possible.")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped model name or checkpoint folder (default {DEFAULT_MODEL})")
    p.add_argument("--stems", default=None, help="comma-separated stems to hear (default: all of the model's)")
    p.add_argument("--input-device", default=None, help="input device index or part of its name (default: the default)")
    p.add_argument("--output-device", default=None, help="output device index or part of its name")
    p.add_argument("--blocksize", type=int, default=0,
                   help="device block in samples; 0 (default) takes the audio server's own period, which adds "
                        "no buffering under JACK")
    p.add_argument("--prefill-ms", type=float, default=None,
                   help="worker mode: silence the output starts with, absorbing worker jitter (default: two blocks)")
    p.add_argument("--mode", default="auto", choices=["auto", "callback", "worker"],
                   help="callback: separate inside the audio callback (no prefill; the CPU's numba step); worker: "
                        "an inference thread behind a prefilled ring (CUDA, heavy models); auto (default) times "
                        "the pipeline first and picks callback when its p99 fits in half the block")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    p.add_argument("--torch-threads", type=int, default=1, help="intra-op threads of the inference worker")
    midi = p.add_mutually_exclusive_group()
    midi.add_argument("--midi-port", default=None, help="listen to the MIDI input port whose name contains this")
    midi.add_argument("--midi-virtual", action="store_true", help="open a virtual JACK MIDI input port to connect to")
    p.add_argument("--midi-map", type=Path, default=None, help="MIDI mapping file, JSON or .toml (default mapping otherwise)")
    p.add_argument("--stem-outputs", action="store_true", help="each chosen stem on its own output channels")
    p.add_argument("--input-file", type=Path, default=None, help="read audio from this file instead of a device")
    p.add_argument("--output-file", type=Path, default=None, help="write the output here (with --input-file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output-file")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (live mode)")
    p.add_argument("--no-tui", action="store_true",
                   help="the one-line status instead of the full-screen control surface (which is shown only "
                        "when stdin and stdout are a terminal)")
    # printed as "stemstream live: error: ..." (status 2): ValueError for bad arguments, models, stems, input
    # files (AudioReadError) and audio devices (LiveError, converted where rt.live is imported); OSError: the files
    p.set_defaults(func=_run_live, user_errors=(ValueError, OSError))


def _check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments (checked before any work), or None."""
    if (args.input_file is None) != (args.output_file is None):
        return "--input-file and --output-file go together"
    if args.blocksize < 0:
        return f"--blocksize must be 0 (the server's period) or positive, got {args.blocksize}"
    if args.prefill_ms is not None and not (args.prefill_ms >= 0 and math.isfinite(args.prefill_ms)):
        return f"--prefill-ms must be 0 or more milliseconds, got {args.prefill_ms}"
    if args.seconds is not None and not (args.seconds > 0 and math.isfinite(args.seconds)):
        return f"--seconds must be a positive number of seconds, got {args.seconds}"
    if args.torch_threads < 1:
        return f"--torch-threads must be 1 or more, got {args.torch_threads}"
    if args.input_file is not None:
        from model.audio_io import AudioReadError, check_audio_path
        from model.audio_out import WRITABLE_SUFFIXES, check_outputs

        if args.output_file.suffix.lower() not in WRITABLE_SUFFIXES:
            return f"--output-file {args.output_file}: write a .wav or .flac file"
        try:
            check_audio_path(args.input_file)
            check_outputs([args.output_file], {args.input_file.resolve()}, args.overwrite)
        except (AudioReadError, OSError) as exc:
            return str(exc)
    return None


def _run_live(args: argparse.Namespace) -> int:
    """Ctrl-C and SIGTERM (``stemstream``'s handler) before the stream starts end with a note and
    status 130 / 143, never a traceback; once it runs, the stream stops and prints its summary."""
    from stemstream_cli import stopped_by

    problem = _check_args(args)
    if problem is not None:
        raise ValueError(problem)
    try:
        return _live(args)
    except KeyboardInterrupt:
        how, status = stopped_by()
        print(f"stopped by {how} before the stream started; nothing was written", file=sys.stderr)
        return status


def _live(args: argparse.Namespace) -> int:
    import model

    try:
        runtime = model.load(args.model, device=args.device)
    except (model.CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
        raise ValueError(f"cannot load model {args.model!r}: {exc}") from exc
    stems = [s.strip() for s in args.stems.split(",") if s.strip()] if args.stems else list(runtime.stems)
    unknown = [s for s in stems if s not in runtime.stems]
    if unknown or not stems:
        raise ValueError(f"unknown stem(s) {', '.join(unknown) or '(none given)'}; "
                         f"this model's stems are: {', '.join(runtime.stems)}")
    if args.input_file is not None:
        return _run_file(args, runtime, stems)
    return _run_device(args, runtime, stems)


def _engine(args: argparse.Namespace, runtime, rate_hz: int, channels: int, stems: list[str]):
    from .engine import Engine

    block = args.blocksize or ENGINE_BLOCK_SAMPLES
    prefill = None if args.prefill_ms is None else math.ceil(args.prefill_ms * rate_hz / 1000)
    return Engine(runtime, rate_hz, channels, block, prefill_samples=prefill, stems=stems,
                  stem_outputs=args.stem_outputs, torch_threads=args.torch_threads, mode=args.mode)


def _run_file(args: argparse.Namespace, runtime, stems: list[str]) -> int:
    from .filedrive import drive_file

    # a bad input file (AudioReadError) or output path (OSError) reaches the user as one error line
    result, engine = drive_file(lambda rate, channels: _engine(args, runtime, rate, channels, stems),
                                args.input_file, args.output_file, args.overwrite)
    stats, latency = engine.stats(), engine.latency()
    engine.close()
    print(f"wrote {result.output}: {result.frames} samples x {result.channels} channel(s) at {result.sample_rate_hz} "
          f"Hz, stems {', '.join(stems)}; output delayed by {latency.engine_samples:.2f} samples "
          f"({latency.total_ms:.2f} ms); load {stats.load:.2f}")
    if result.nonfinite_samples:
        print(f"warning: {result.nonfinite_samples} NaN or infinite input sample(s) were replaced by zeros",
              file=sys.stderr)
    if result.float_output:
        print("warning: the output goes beyond full scale: written as 32-bit float wav, not clipped", file=sys.stderr)
    if result.clipped_samples:
        print(f"warning: {result.clipped_samples} output sample(s) beyond full scale were clipped in the flac file; "
              "write a .wav output to keep them", file=sys.stderr)
    return 0


def _run_device(args: argparse.Namespace, runtime, stems: list[str]) -> int:
    from .live import LiveError, LiveStream, choose_devices, run_live
    from .midi import MidiController, MidiMapping

    per_channel = len(stems) if args.stem_outputs else 1
    controller, port = None, None
    try:
        choice = choose_devices(args.input_device, args.output_device, per_channel)
        engine = _engine(args, runtime, choice.sample_rate_hz, choice.channels, stems)
        if args.midi_port is not None or args.midi_virtual:
            mapping = MidiMapping.load(args.midi_map, runtime.stems) if args.midi_map else None
            controller = MidiController(engine.mixer, mapping)
            port = controller.open(args.midi_port, virtual=args.midi_virtual)
            print(f"MIDI: listening on {port}", file=sys.stderr)
        stream = LiveStream(engine, choice, blocksize=args.blocksize)
        latency = stream.latency()
        print(f"live: {choice.channels} channel(s) at {choice.sample_rate_hz} Hz, stems {', '.join(stems)}, "
              f"latency {latency.total_ms:.1f} ms ({latency.total_samples:.1f} samples); Ctrl-C stops",
              file=sys.stderr)
        title = (f"stemstream live: {args.model}, {choice.sample_rate_hz} Hz, {choice.channels} ch, "
                 f"block {args.blocksize or 'server period'}")
        run_live(stream, args.seconds, controller, port, title, tui=False if args.no_tui else None)
    except LiveError as exc:  # the audio devices: the user's to fix, as a ValueError is
        raise ValueError(str(exc)) from exc
    finally:
        if controller is not None:
            controller.close()
    stats = engine.stats()
    engine.close()
    print(f"stopped: {stats.samples_out} samples played, {stats.underrun_samples} underrun, "
          f"{stream.status_flags} device status flags, {stats.nonfinite_samples} NaN/inf input samples zeroed",
          file=sys.stderr)
    return 0


def _run_devices(args: argparse.Namespace) -> int:
    from .live import LiveError, load_sounddevice
    from .midi import list_input_ports

    try:
        sd = load_sounddevice()
        devices = sd.query_devices()
        apis = sd.query_hostapis()
    except LiveError as exc:
        print(f"audio: {exc}")
        devices, apis = [], []
    print("audio devices (PortAudio):")
    for d in devices:
        print(f"  {d['index']:3d}  {d['name']}  [{apis[d['hostapi']]['name']}]  in {d['max_input_channels']}, "
              f"out {d['max_output_channels']}, {d['default_samplerate']:.0f} Hz")
    if not len(devices):
        print("  none (no sound card and no audio server: start one, e.g. `jackd -d dummy -r 48000 -p 256 &`)")
    print("MIDI input ports (JACK MIDI):")
    try:
        ports = list_input_ports()
    except Exception as exc:  # rtmidi raises its own error types when no JACK server answers
        print(f"  unavailable: {exc}")
        return 0
    for p in ports:
        print(f"  {p}")
    if not ports:
        print("  none")
    return 0
