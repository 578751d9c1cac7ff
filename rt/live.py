"""The live loop: an :class:`~rt.engine.Engine` on a sounddevice (PortAudio) duplex stream.

The stream's callback hands the device's blocks to ``Engine.callback`` (the whole pipeline in
callback mode, ring copies in worker mode). Everything that can fail (no device, no audio server, an unsupported rate, too few channels)
raises :class:`LiveError` with a message that says what to do, before any stream starts.
"""
from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .engine import Engine
from .delays import LatencyBreakdown

if TYPE_CHECKING:
    from .midi import MidiController

SUPPORTED_RATES_HZ = (22050, 44100, 48000, 88200, 96000)
NO_AUDIO_HINT = ("run `stemstream devices` to see what PortAudio finds; on a machine without a sound card "
                 "start a JACK server first (`jackd -d dummy -r 48000 -p 256 &`), or use --input-file/--output-file")


class LiveError(RuntimeError):
    """A problem with the audio setup, explained for the user."""


@dataclass(frozen=True)
class DeviceChoice:
    """The devices and format a live stream will use."""

    input_device: int
    output_device: int
    sample_rate_hz: int
    channels: int  # 1 or 2, in and out (times the stems with --stem-outputs)


def load_sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # PortAudio's shared library is missing
        raise LiveError(f"PortAudio is not available ({exc}); install libportaudio2") from exc
    return sounddevice


def choose_devices(input_device: str | int | None, output_device: str | int | None,
                   output_channels_per_channel: int = 1) -> DeviceChoice:
    """Resolve devices (index, name substring, or the defaults) and check rate and channels."""
    sd = load_sounddevice()
    try:
        inp = sd.query_devices(_device_arg(input_device), "input")
        out = sd.query_devices(_device_arg(output_device), "output")
    except (ValueError, sd.PortAudioError) as exc:
        raise LiveError(f"no usable audio device: {exc}; {NO_AUDIO_HINT}") from exc
    rate = int(round(inp["default_samplerate"]))
    if rate not in SUPPORTED_RATES_HZ:
        raise LiveError(f"input device {inp['name']!r} runs at {rate} Hz; supported rates are "
                        f"{', '.join(map(str, SUPPORTED_RATES_HZ))} Hz: set the device (or the audio server) to one")
    if int(round(out["default_samplerate"])) != rate:
        raise LiveError(f"input device runs at {rate} Hz but output device {out['name']!r} at "
                        f"{out['default_samplerate']:.0f} Hz: use devices on one clock")
    channels = min(2, inp["max_input_channels"])
    needed = channels * output_channels_per_channel
    if out["max_output_channels"] < needed:
        raise LiveError(f"output device {out['name']!r} has {out['max_output_channels']} channel(s), "
                        f"{needed} are needed (fewer stems, or no --stem-outputs)")
    return DeviceChoice(inp["index"], out["index"], rate, channels)


def _device_arg(device: str | int | None) -> str | int | None:
    if isinstance(device, str) and device.isdigit():
        return int(device)
    return device


class LiveStream:
    """A running duplex stream feeding an engine; a context manager that stops cleanly."""

    def __init__(self, engine: Engine, choice: DeviceChoice, blocksize: int = 0) -> None:
        """``blocksize=0`` takes the audio server's own period (no extra buffering under JACK)."""
        sd = load_sounddevice()
        self.engine = engine
        self.status_flags = 0  # callbacks that reported an xrun or other status from PortAudio
        engine.start()  # numba kernels compiled, model warmed, output ring prefilled
        try:
            self._stream = sd.Stream(samplerate=choice.sample_rate_hz, blocksize=blocksize,
                                     device=(choice.input_device, choice.output_device),
                                     channels=(engine.channels, engine.output_channels), dtype="float32",
                                     callback=self._callback)
        except sd.PortAudioError as exc:
            engine.stop()
            raise LiveError(f"cannot open the audio stream: {exc}; {NO_AUDIO_HINT}") from exc

    def _callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info, status) -> None:
        if status:
            self.status_flags += 1
        self.engine.callback(indata, outdata)

    def latency(self) -> LatencyBreakdown:
        """The engine's latency plus PortAudio's reported input and output latencies."""
        in_s, out_s = self._stream.latency
        rate = self.engine.host_rate_hz
        return self.engine.latency(in_s * rate, out_s * rate)

    def __enter__(self) -> "LiveStream":
        # the callback's numba calls make small transient Python objects; freezing what exists
        # keeps a full garbage collection (which would walk torch's many objects) out of it
        gc.collect()
        gc.freeze()
        self._stream.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stream.stop()
        self._stream.close()
        self.engine.stop()


def status_line(stream: LiveStream) -> str:
    """One line: load, underruns, device status flags, latency."""
    stats = stream.engine.stats()
    return (f"{stream.engine.mode} | load {stats.load:4.2f} | underruns {stats.underrun_samples} samples | "
            f"xruns {stream.status_flags} | latency {stream.latency().total_ms:5.1f} ms")


def run_live(stream: LiveStream, seconds: float | None = None, controller: MidiController | None = None,
             midi_port: str | None = None,
             title: str = "stemstream live", tui: bool | None = None) -> None:
    """The control surface (:mod:`rt.tui`) when stdin and stdout are a terminal (or ``tui=True``),
    else the one-line status (pipes, CI, ``tui=False``); returns on Ctrl-C, ``q`` or after ``seconds``."""
    if tui is None:
        tui = sys.stdin.isatty() and sys.stdout.isatty()
    if tui:
        from .tui import run_control_surface
        run_control_surface(stream, seconds, controller, midi_port, title)
    else:
        run_until_interrupted(stream, seconds)


def run_until_interrupted(stream: LiveStream, seconds: float | None = None, every_s: float = 0.5,
                          write: Callable[[str], None] = lambda s: (sys.stderr.write(s), sys.stderr.flush())) -> None:
    """Print the status line in place until Ctrl-C (or ``seconds``), then return normally."""
    start = time.monotonic()
    try:
        with stream:
            while seconds is None or time.monotonic() - start < seconds:
                time.sleep(every_s)
                write("\r" + status_line(stream))
                if stream.engine.error is not None:
                    raise LiveError(f"the inference worker stopped: {stream.engine.error!r}")
    except KeyboardInterrupt:
        pass
    write("\n")
