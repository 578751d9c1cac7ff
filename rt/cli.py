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
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (live mode)")
    p.add_argument("--no-tui", action="store_true",
                   help="the one-line status instead of the full-screen control surface (which is shown only "
                        "when stdin and stdout are a terminal)")
    p.set_defaults(func=_run_live)


def _fail(message: str) -> int:
    print(f"stemstream live: error: {message}", file=sys.stderr)
    return 2


def _run_live(args: argparse.Namespace) -> int:
    import model

    if (args.input_file is None) != (args.output_file is None):
        return _fail("--input-file and --output-file go together")
    if args.blocksize < 0:
        return _fail(f"--blocksize must be 0 (the server's period) or positive, got {args.blocksize}")
    try:
        separator = model.load(args.model, device=args.device)
    except (model.CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
        return _fail(f"cannot load model {args.model!r}: {exc}")
    stems = [s.strip() for s in args.stems.split(",") if s.strip()] if args.stems else list(separator.stems)
    unknown = [s for s in stems if s not in separator.stems]
    if unknown or not stems:
        return _fail(f"unknown stem(s) {', '.join(unknown) or '(none given)'}; "
                     f"this model's stems are: {', '.join(separator.stems)}")
    if args.input_file is not None:
        return _run_file(args, separator, stems)
    return _run_device(args, separator, stems)


def _engine(args: argparse.Namespace, separator, rate_hz: int, channels: int, stems: list[str]):
    from .engine import Engine

    block = args.blocksize or ENGINE_BLOCK_SAMPLES
    prefill = None if args.prefill_ms is None else math.ceil(args.prefill_ms * rate_hz / 1000)
    return Engine(separator, rate_hz, channels, block, prefill_samples=prefill, stems=stems,
                  stem_outputs=args.stem_outputs, torch_threads=args.torch_threads, mode=args.mode)


def _run_file(args: argparse.Namespace, separator, stems: list[str]) -> int:
    import soundfile

    from model.data.audio import read_audio

    from .filedrive import drive

    try:
        info = soundfile.info(str(args.input_file))
        audio = read_audio(args.input_file, info.samplerate, min(2, info.channels))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        return _fail(f"cannot read {args.input_file}: {exc}")
    engine = _engine(args, separator, info.samplerate, audio.shape[0], stems)
    out = drive(engine, audio)
    soundfile.write(str(args.output_file), out.T, info.samplerate)
    stats, latency = engine.stats(), engine.latency()
    engine.close()
    print(f"wrote {args.output_file}: {out.shape[1]} samples x {out.shape[0]} channel(s) at {info.samplerate} Hz, "
          f"stems {', '.join(stems)}; output delayed by {latency.engine_samples:.2f} samples "
          f"({latency.total_ms:.2f} ms); load {stats.load:.2f}")
    return 0


def _run_device(args: argparse.Namespace, separator, stems: list[str]) -> int:
    from .live import LiveError, LiveStream, choose_devices, run_live
    from .midi import MidiController, MidiMapping

    per_channel = len(stems) if args.stem_outputs else 1
    controller, port = None, None
    try:
        choice = choose_devices(args.input_device, args.output_device, per_channel)
        engine = _engine(args, separator, choice.sample_rate_hz, choice.channels, stems)
        if args.midi_port is not None or args.midi_virtual:
            mapping = MidiMapping.load(args.midi_map, separator.stems) if args.midi_map else None
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
    except (LiveError, ValueError) as exc:
        return _fail(str(exc))
    finally:
        if controller is not None:
            controller.close()
    stats = engine.stats()
    engine.close()
    print(f"stopped: {stats.samples_out} samples played, {stats.underrun_samples} underrun, "
          f"{stream.status_flags} device status flags", file=sys.stderr)
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
