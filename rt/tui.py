"""The live control surface: a full-screen terminal UI for ``stemstream live`` (rich).

What it shows, per stem: a level meter (post-gain peak and RMS, dBFS), the gain, mute and solo;
then the input and output levels, dry/wet, the engine's latency in ms and samples, the compute
load p99, underruns and xruns, the MIDI port and its mapping, and MIDI learn's state. Keys
(``?`` shows them) select a stem, mute, solo, change gain and dry/wet, start MIDI learn; ``q``
quits.

Threads: the audio path writes the meters (:class:`rt.meters.StemMeters`, attached to the
mixer, one numba kernel over preallocated arrays) and reads the mixer's preallocated control
state. This UI runs on the thread that calls :meth:`ControlSurface.run` (the main thread),
redraws at ``REFRESH_HZ`` (at most 30 Hz), reads the meters without writing them, and changes
controls only through the mixer's setters and the MIDI controller, as MIDI does.

Why rich and not Textual: the UI is one screen redrawn at a fixed rate plus single-key
commands. rich (one pure-Python dependency, well kept) parses the styles and knows the
terminal's colour system and alternate screen; Textual runs an asyncio message loop, widgets
and CSS layout on top of rich. Every Python instruction the UI runs competes for the GIL with
the audio callback, so the UI is kept to the least that draws the screen: lines of styled runs
turned into one ANSI frame by :class:`AnsiFrame` (0.23 ms of CPU per frame on the loaded
2-core dev machine; through rich's ``Live``/``Console.print`` it cost 3.5 ms, and with rich
tables and panels 19 ms), and the GIL switch interval drops to 1 ms while it runs so the
callback never waits long for the GIL.
"""
from __future__ import annotations

import math
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .meters import FLOOR_DB, StemMeters
from .midi import MAX_GAIN_DB, MIN_GAIN_DB, MidiController
from .mixer import StemMixer

REFRESH_HZ = 10.0           # screen redraws per second (<= 30)
GIL_SWITCH_INTERVAL_S = 0.001  # while the UI runs: the audio callback waits at most this long for the GIL
METER_RANGE_DB = 60.0       # a meter shows -60..0 dBFS
METER_WIDTH = 30            # characters (a stem row fits 100 columns)
GAIN_STEP_DB = 1.0
STALL_WARNING_S = 1.0       # no metered block for this long: the screen says the audio stopped
WET_STEP = 0.05

KEYS: tuple[tuple[str, str], ...] = (
    ("Up/Down, j/k, 1-9", "select a stem"),
    ("m", "mute / unmute the selected stem"),
    ("s", "solo / unsolo the selected stem"),
    ("+ / -", f"selected stem's gain +{GAIN_STEP_DB:g} / -{GAIN_STEP_DB:g} dB"),
    ("0", "selected stem's gain to 0 dB"),
    ("] / [", f"dry/wet {100 * WET_STEP:+.0f} / {-100 * WET_STEP:+.0f} % wet"),
    ("l", "MIDI learn: the next CC sets the selected stem's gain"),
    ("n", "MIDI learn: the next note mutes the selected stem"),
    ("w", "MIDI learn: the next CC sets dry/wet"),
    ("Esc", "cancel MIDI learn"),
    ("?", "show / hide these keys"),
    ("q", "quit (Ctrl-C too)"),
)
Run = tuple[str, str]   # text and its rich style ("" for none)
Line = list[Run]
_ARROWS = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down"}


@dataclass(frozen=True)
class EngineView:
    """What the UI shows of the engine besides the mixer: numbers read at each redraw."""

    engine_latency_ms: float
    engine_latency_samples: float
    total_latency_ms: float
    total_latency_samples: float
    load_p99: float
    underrun_samples: int
    xruns: int
    mode: str = ""            # the engine's mode: "callback" or "worker"
    late_callbacks: int = 0   # callback mode: callbacks whose compute exceeded their period


def load_p99(host_samples: np.ndarray, total_ms: np.ndarray, host_rate_hz: float) -> float:
    """p99 of compute time over audio time per block (``host_samples [N]``, ``total_ms [N]``); 0 with no block."""
    if len(host_samples) == 0:
        return 0.0
    audio_ms = np.maximum(host_samples, 1) * 1000.0 / host_rate_hz
    return float(np.percentile(total_ms / audio_ms, 99))


def split_keys(data: str) -> list[str]:
    """Terminal input -> keys: ``"up"``/``"down"`` for arrow sequences, ``"esc"`` for a lone Escape, else characters."""
    keys, i = [], 0
    while i < len(data):
        seq = data[i:i + 3]
        if seq in _ARROWS:
            keys.append(_ARROWS[seq])
            i += 3
        elif data[i] == "\x1b" and data[i + 1:i + 2] in ("[", "O"):
            i += 3  # another escape sequence (left/right, ...): ignored
        elif data[i] == "\x1b":
            keys.append("esc")
            i += 1
        else:
            keys.append(data[i])
            i += 1
    return keys


class ControlSurface:
    """The control surface of one running engine: state, key handling, drawing, the terminal loop.

    Args:
        mixer: the engine's :class:`rt.mixer.StemMixer` (the UI calls its setters).
        view: returns the engine numbers to show (:class:`EngineView`), called at each redraw.
        controller: the MIDI controller, if MIDI is on (learn goes through it).
        midi_port: the MIDI port's name, for the screen.
        title: the header's text (model, rate, channels, block).
    """

    def __init__(self, mixer: StemMixer, view: Callable[[], EngineView], controller: MidiController | None = None,
                 midi_port: str | None = None, title: str = "stemstream live") -> None:
        self.mixer = mixer
        self.view = view
        self.controller = controller
        self.midi_port = midi_port
        self.title = title
        self.meters = StemMeters(len(mixer.stems), mixer.sample_rate_hz)
        self.meters.warmup()  # compiled before the stream starts
        self.cursor = 0
        self.show_keys = False
        self.message = "? shows the keys"
        self._learn_target: str | None = None
        self._blocks_seen, self._blocks_changed_at = -1, time.monotonic()

    def attach(self) -> None:
        """Let the mixer feed this surface's meters (one reference assignment; before the stream starts)."""
        self.mixer.meters = self.meters

    def detach(self) -> None:
        self.mixer.meters = None

    # ------------------------------------------------------------------ keys
    def handle_key(self, key: str) -> bool:
        """Apply one key (as :func:`split_keys` names it); returns ``False`` when the key quits."""
        stems = self.mixer.stems
        stem = stems[self.cursor]
        state = self.mixer.state()
        if key == "q":
            return False
        if key in ("up", "k"):
            self.cursor = (self.cursor - 1) % len(stems)
        elif key in ("down", "j"):
            self.cursor = (self.cursor + 1) % len(stems)
        elif key.isdigit() and 1 <= int(key) <= min(9, len(stems)):
            self.cursor = int(key) - 1
        elif key == "m":
            self.mixer.mute(stem, stem not in state.muted)
            self.message = f"{stem} {'unmuted' if stem in state.muted else 'muted'}"
        elif key == "s":
            self.mixer.solo(stem, stem not in state.soloed)
            self.message = f"{stem} {'unsoloed' if stem in state.soloed else 'soloed'}"
        elif key in ("+", "=", "-", "_", "0"):
            gain = state.gains_db[stem]
            if key == "0":
                new = 0.0
            elif key in ("+", "="):
                new = MIN_GAIN_DB if gain == -math.inf else min(MAX_GAIN_DB, gain + GAIN_STEP_DB)
            else:
                new = -math.inf if gain - GAIN_STEP_DB < MIN_GAIN_DB else gain - GAIN_STEP_DB
            self.mixer.set_gain_db(stem, new)
            self.message = f"{stem} gain {_db(new)}"
        elif key in ("]", "["):
            if self.mixer.stem_outputs:
                self.message = "dry/wet does not apply with --stem-outputs"
            else:
                wet = min(1.0, max(0.0, round(state.wet + (WET_STEP if key == "]" else -WET_STEP), 6)))
                self.mixer.set_wet(wet)
                self.message = f"dry/wet {100 * wet:.0f} % wet"
        elif key in ("l", "n", "w"):
            self._start_learn({"l": f"gain:{stem}", "n": f"mute:{stem}", "w": "wet"}[key])
        elif key == "esc":
            if self.controller is not None and self.controller.learning is not None:
                self.controller.cancel_learn()
                self._learn_target = None
                self.message = "MIDI learn cancelled"
        elif key == "?":
            self.show_keys = not self.show_keys
        return True

    def _start_learn(self, target: str) -> None:
        if self.controller is None:
            self.message = "MIDI is off: start with --midi-virtual or --midi-port NAME to learn"
            return
        self.controller.learn(target)
        self._learn_target = target
        self.message = f"MIDI learn: waiting for {'a note' if target.startswith('mute:') else 'a CC'} for {target}"

    def learn_state(self) -> str:
        """``"off"``, ``"idle"``, ``"waiting for a CC -> gain:drums"`` or ``"learned CC 30 -> gain:drums"``."""
        if self.controller is None:
            return "off"
        waiting = self.controller.learning
        if waiting is not None:
            return f"waiting for {'a note' if waiting.startswith('mute:') else 'a CC'} -> {waiting} (Esc cancels)"
        if self._learn_target is not None:
            return f"learned {self._binding(self._learn_target)} -> {self._learn_target}"
        return "idle (l, n, w start it)"

    def _binding(self, target: str) -> str:
        mapping = self.controller.mapping
        action, _, stem = target.partition(":")
        if action == "wet":
            return f"CC {mapping.wet_cc}"
        table = mapping.notes if action == "mute" else mapping.gain_ccs
        numbers = [n for n, s in table.items() if s == stem]
        return f"{'note' if action == 'mute' else 'CC'} {numbers[0] if numbers else '?'}"

    # ------------------------------------------------------------------ drawing
    def lines(self) -> list[Line]:
        """The whole screen as lines of styled runs (reads the meters, the mixer state and the engine view)."""
        state = self.mixer.state()
        view = self.view()
        peak_db, rms_db = self.meters.read_db()
        out: list[Line] = [[(self.title, "bold"), ("   ? keys   q quit", "dim")], _rule("stems (post-gain)"),
                           [(f"    {'stem':<12} {f'level, dBFS ({-METER_RANGE_DB:g}..0)':<{METER_WIDTH}} {'peak':>6} "
                             f"{'RMS':>6} {'gain':>9}  mute  solo", "bold")]]
        for i, stem in enumerate(self.mixer.stems):
            here = i == self.cursor
            muted, soloed = stem in state.muted, stem in state.soloed
            heard = stem in state.selected and not muted and (not state.soloed or soloed)
            out.append([(" > " if here else "   ", "bold cyan"),
                        (f" {i + 1} {stem:<10}", "bold cyan" if here else ("" if heard else "dim")), (" ", ""),
                        *meter_bar(peak_db[i], rms_db[i]),
                        (f" {_level(peak_db[i]):>6} {_level(rms_db[i]):>6} {_db(state.gains_db[stem]):>9}  ", ""),
                        ("MUTE" if muted else "  - ", "bold red" if muted else "dim"), ("  ", ""),
                        ("SOLO" if soloed else "  - ", "bold yellow" if soloed else "dim"),
                        ("" if stem in state.selected else "  not in --stems", "dim")])
        out.append([])
        for label, row in (("input", self.meters.input_row), ("output", self.meters.output_row)):
            out.append([("    ", ""), (f"{label:<12}", "italic"), (" ", ""), *meter_bar(peak_db[row], rms_db[row]),
                        (f" {_level(peak_db[row]):>6} {_level(rms_db[row]):>6}", "")])
        out.append(_rule("engine"))
        if self.mixer.stem_outputs:
            out.append(_field("dry/wet", ("n/a: each stem on its own outputs (--stem-outputs)", "")))
        else:
            out.append(_field("dry/wet", *_bar(state.wet, 20, "blue"),
                              (f" {100 * state.wet:.0f} % wet, {100 * (1 - state.wet):.0f} % dry", "")))
        mode = f" ({view.mode} mode)" if view.mode else ""
        out.append(_field("latency", (f"engine{mode} {view.engine_latency_ms:.2f} ms ({view.engine_latency_samples:.1f} "
                                      f"samples); with the device {view.total_latency_ms:.2f} ms "
                                      f"({view.total_latency_samples:.1f} samples)", "")))
        stalled_s = self.stalled_s()
        if stalled_s >= STALL_WARNING_S:
            out.append(_field("AUDIO", (f"no block metered for {stalled_s:.1f} s: the audio server is not calling the "
                                        "stream (is its input connected? JACK drops a client too slow for its period)",
                                        "bold red")))
        out.append(_field("compute", (f"load p99 {view.load_p99:.2f}   underruns ", ""),
                          (f"{view.underrun_samples} samples", "bold red" if view.underrun_samples else ""),
                          ("   late callbacks ", ""), (str(view.late_callbacks), "bold red" if view.late_callbacks else ""),
                          ("   xruns ", ""), (str(view.xruns), "bold red" if view.xruns else "")))
        port, mapping = self._midi_lines()
        out.append(_field("MIDI", (port, "")))
        for j, part in enumerate(mapping.split("\n")):
            out.append(_field("mapping" if j == 0 else "", (part, "")))
        out.append(_field("learn", (self.learn_state(), "")))
        out.append(_field("", (self.message, "italic")))
        if self.show_keys:
            out.append(_rule("keys (? hides)"))
            out.extend([("  ", ""), (f"{k:<18}", "bold cyan"), (what, "")] for k, what in KEYS)
        return out

    def stalled_s(self) -> float:
        """Seconds since the meters last saw a block (0 while blocks flow); read at each redraw."""
        blocks, now = int(self.meters.blocks[0]), time.monotonic()
        if blocks != self._blocks_seen:
            self._blocks_seen, self._blocks_changed_at = blocks, now
        return now - self._blocks_changed_at

    def render(self):
        """The screen as one rich ``Text`` (for tests, screenshots and consoles that are not a terminal)."""
        from rich.text import Text

        return Text("\n", no_wrap=True, overflow="ellipsis").join(
            Text.assemble(*[(t, st or None) for t, st in line]) for line in self.lines())

    def _midi_lines(self) -> tuple[str, str]:
        """The MIDI port line and the mapping (one or two lines)."""
        if self.controller is None:
            return "off (--midi-virtual or --midi-port NAME turn it on)", "-"
        m = self.controller.mapping
        channel = "any channel" if m.channel is None else f"channel {m.channel}"
        port = (f"{self.midi_port or '?'}, {channel}; {self.controller.handled} handled, "
                f"{self.controller.unknown} unknown, {self.controller.malformed} malformed")
        notes = ", ".join(f"{n} {s}" for n, s in sorted(m.notes.items()))
        ccs = ", ".join(f"{n} {s}" for n, s in sorted(m.gain_ccs.items()))
        wet = f"CC {m.wet_cc}" if m.wet_cc is not None else "-"
        return port, f"mute: notes {notes or '-'}; dry/wet: {wet}\ngain: CCs {ccs or '-'}"

    # ------------------------------------------------------------------ the terminal loop
    def run(self, running: Callable[[], bool], seconds: float | None = None) -> None:
        """Draw and read keys on this terminal until ``q``, Ctrl-C, ``seconds`` or ``running()`` turns false."""
        import termios
        import tty

        from rich.color import ColorSystem
        from rich.console import Console

        console = Console()
        systems = {"standard": ColorSystem.STANDARD, "256": ColorSystem.EIGHT_BIT, "truecolor": ColorSystem.TRUECOLOR}
        frame = AnsiFrame(systems.get(console.color_system))
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        switch = sys.getswitchinterval()
        start, period = time.monotonic(), 1.0 / REFRESH_HZ
        try:
            tty.setcbreak(fd)
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
            console.set_alt_screen(True)
            console.show_cursor(False)
            next_draw = time.monotonic()
            while running() and (seconds is None or time.monotonic() - start < seconds):
                ready, _, _ = select.select([fd], [], [], max(0.0, next_draw - time.monotonic()))
                if ready:
                    data = os.read(fd, 64).decode(errors="ignore")
                    if not all(self.handle_key(k) for k in split_keys(data)):
                        break
                if time.monotonic() >= next_draw:
                    width, height = console.size
                    console.file.write(frame.render(self.lines(), width, height))
                    console.file.flush()
                    next_draw = max(next_draw + period, time.monotonic())
        except KeyboardInterrupt:
            pass
        finally:
            sys.setswitchinterval(switch)
            console.show_cursor(True)
            console.set_alt_screen(False)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def meter_bar(peak_db: float, rms_db: float, width: int = METER_WIDTH) -> Line:
    """A meter as styled runs: RMS as a filled bar (green, yellow above -18 dBFS, red above -6), the peak a ``|``."""
    def cells(db: float) -> int:
        return int(round(width * min(1.0, max(0.0, (db + METER_RANGE_DB) / METER_RANGE_DB))))

    filled, peak_at = cells(rms_db), (cells(peak_db) - 1 if peak_db > FLOOR_DB else -1)
    bounds = ((0, cells(-18.0), "green"), (cells(-18.0), cells(-6.0), "yellow"), (cells(-6.0), width, "red"))
    runs: Line = [("█" * (min(hi, filled) - lo), color) for lo, hi, color in bounds if min(hi, filled) > lo]
    if peak_at >= filled:
        color = next(c for lo, hi, c in bounds if lo <= peak_at < hi)
        runs += [("·" * (peak_at - filled), "grey30"), ("|", f"bold {color}"), ("·" * (width - peak_at - 1), "grey30")]
    else:
        runs.append(("·" * (width - filled), "grey30"))
    return runs


def _rule(title: str) -> Line:
    return [("── ", "grey50"), (title, "bold"), (" " + "─" * max(0, 100 - len(title)), "grey50")]


def _field(name: str, *parts: Run) -> Line:
    return [(f"  {name:<9}", "bold"), *parts]


def _bar(fraction: float, width: int, color: str) -> Line:
    filled = int(round(width * fraction))
    return [("█" * filled, color), ("·" * (width - filled), "grey30")]


class AnsiFrame:
    """Turns lines of styled runs into one terminal frame (cursor home, lines, clear the rest).

    rich parses each style once (``Style.render`` for the terminal's colour system); a frame is
    then string joins only: about 0.3 ms of Python instead of 2.5 ms through ``Console.print``.
    """

    def __init__(self, color_system) -> None:
        self.color_system = color_system
        self._codes: dict[str, tuple[str, str]] = {}

    def _code(self, style: str) -> tuple[str, str]:
        codes = self._codes.get(style)
        if codes is None:
            from rich.style import Style

            rendered = Style.parse(style).render("\0", color_system=self.color_system) if style else "\0"
            codes = self._codes[style] = tuple(rendered.split("\0", 1))
        return codes

    def render(self, lines: list[Line], width: int, height: int) -> str:
        """``lines`` clipped to ``width`` x ``height`` cells, as ANSI text that redraws the screen."""
        parts = ["\x1b[H"]
        for row, line in enumerate(lines[:height]):
            left = width
            for text, style in line:
                if left <= 0 or not text:
                    continue
                text = text[:left]
                left -= len(text)
                before, after = self._code(style)
                parts += (before, text, after)
            parts.append("\x1b[K" + ("\r\n" if row < min(len(lines), height) - 1 else ""))
        parts.append("\x1b[J")
        return "".join(parts)


def _level(db: float) -> str:
    return "-inf" if db <= FLOOR_DB else f"{db:6.1f}"


def _db(gain_db: float) -> str:
    return "-inf dB" if gain_db == -math.inf else f"{gain_db:+.1f} dB"


def engine_view(engine, stream) -> Callable[[], EngineView]:
    """The :class:`EngineView` reader of a :class:`rt.live.LiveStream` (latencies read once, counters each call)."""
    latency = stream.latency()
    rate = engine.host_rate_hz

    def read() -> EngineView:
        stats = engine.stats()
        recent = engine.timings()[-512:]
        host = np.array([t.host_samples for t in recent], np.float64)
        total = np.array([t.total_ms for t in recent], np.float64)
        return EngineView(latency.engine_samples * 1000.0 / rate, latency.engine_samples, latency.total_ms,
                          latency.total_samples, load_p99(host, total, rate), stats.underrun_samples,
                          stream.status_flags, engine.mode, stats.late_callbacks)

    return read


def run_control_surface(stream, seconds: float | None = None, controller: MidiController | None = None,
                        midi_port: str | None = None, title: str = "stemstream live") -> None:
    """Run ``stream`` (a :class:`rt.live.LiveStream`) under the control surface until ``q``/Ctrl-C/``seconds``."""
    from .live import LiveError

    engine = stream.engine
    surface = ControlSurface(engine.mixer, engine_view(engine, stream), controller, midi_port, title)
    surface.attach()
    try:
        with stream:
            surface.run(lambda: engine.error is None, seconds)
    finally:
        surface.detach()
    if engine.error is not None:
        raise LiveError(f"the engine stopped: {engine.error!r}")
