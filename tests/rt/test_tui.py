"""The control surface's keys and screen, driven directly (the tmux test drives the real program)."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console

from rt.midi import CONTROL_CHANGE, MidiController
from rt.mixer import StemMixer
from rt.tui import KEYS, ControlSurface, EngineView, load_p99, split_keys

STEMS = ("bass", "drums", "guitar", "piano")
VIEW = EngineView(engine_latency_ms=3.04, engine_latency_samples=145.9, total_latency_ms=8.37,
                  total_latency_samples=401.9, load_p99=0.42, underrun_samples=12, xruns=3, mode="callback",
                  late_callbacks=5)


def screen(surface: ControlSurface) -> str:
    console = Console(file=io.StringIO(), width=130, color_system=None)
    console.print(surface.render())
    return console.file.getvalue()


def row(text: str, stem: str) -> str:
    return next(line for line in text.splitlines() if f" {stem} " in line and "dB" in line)


@pytest.fixture
def surface():
    mixer = StemMixer(STEMS, 2, 48000)
    controller = MidiController(mixer)
    s = ControlSurface(mixer, lambda: VIEW, controller, "stemstream:midi_in", "test title")
    s.attach()
    return s


def test_keys_select_mute_solo_and_change_gain_through_the_mixer(surface):
    mixer = surface.mixer
    for key in ["down", "m", "-", "-", "-"]:  # drums: muted, -3 dB
        assert surface.handle_key(key)
    for key in ["4", "s", "+", "+"]:  # piano: soloed, +2 dB
        surface.handle_key(key)
    state = mixer.state()
    assert state.muted == ("drums",) and state.soloed == ("piano",)
    assert state.gains_db["drums"] == -3.0 and state.gains_db["piano"] == 2.0
    text = screen(surface)
    assert "MUTE" in row(text, "drums") and "-3.0 dB" in row(text, "drums")
    assert "SOLO" in row(text, "piano") and "+2.0 dB" in row(text, "piano")
    assert "MUTE" not in row(text, "bass") and "SOLO" not in row(text, "bass")
    surface.handle_key("m")  # toggles back only the selected stem (piano)
    assert mixer.state().muted == ("drums", "piano")


def test_gain_stops_at_the_midi_range_and_goes_to_silence_below_it(surface):
    for _ in range(10):
        surface.handle_key("+")
    assert surface.mixer.state().gains_db["bass"] == 6.0  # MAX_GAIN_DB
    surface.handle_key("0")
    for _ in range(60):
        surface.handle_key("-")
    assert surface.mixer.state().gains_db["bass"] == -60.0
    surface.handle_key("-")
    assert surface.mixer.state().gains_db["bass"] == -math.inf
    assert "-inf dB" in row(screen(surface), "bass")
    surface.handle_key("+")
    assert surface.mixer.state().gains_db["bass"] == -60.0


def test_dry_wet_keys_and_the_screen(surface):
    for _ in range(4):
        surface.handle_key("[")
    assert surface.mixer.state().wet == pytest.approx(0.8)
    for _ in range(30):
        surface.handle_key("]")
    assert surface.mixer.state().wet == 1.0
    surface.handle_key("[")
    assert "95 % wet, 5 % dry" in screen(surface)


def test_midi_learn_started_from_a_key_shows_its_state(surface):
    surface.handle_key("2")
    surface.handle_key("l")
    assert "waiting for a CC -> gain:drums" in screen(surface)
    surface.controller.handle([CONTROL_CHANGE, 30, 64])  # the next CC is learned ...
    assert "learned CC 30 -> gain:drums" in screen(surface)
    surface.controller.handle([CONTROL_CHANGE, 30, 1])  # ... and then sets drums' gain (CC 1 = -60 dB)
    assert surface.mixer.state().gains_db["drums"] == -60.0
    surface.handle_key("n")
    surface.handle_key("esc")
    assert surface.controller.learning is None and "MIDI learn cancelled" in screen(surface)


def test_learn_without_midi_says_how_to_turn_it_on():
    s = ControlSurface(StemMixer(STEMS, 2, 48000), lambda: VIEW)
    s.handle_key("l")
    assert "--midi-virtual" in screen(s)


def test_screen_shows_engine_numbers_midi_mapping_meters_and_keys(surface):
    stems = np.stack([np.full((2, 256), a, np.float32) for a in (0.5, 0.25, 0.0, 0.0)])
    out = np.zeros((2, 256), np.float32)
    for _ in range(200):
        surface.mixer.mix_into(stems, np.full((2, 256), 0.1, np.float32), 256, out)
    text = screen(surface)
    assert "3.04 ms (145.9 samples)" in text and "with the device 8.37 ms (401.9 samples)" in text
    assert "load p99 0.42" in text and "underruns 12 samples" in text and "xruns 3" in text
    assert "engine (callback mode) 3.04 ms" in text and "late callbacks 5" in text
    assert "stemstream:midi_in" in text and "36 bass" in text and "21 bass" in text and "CC 20" in text
    assert "-6.0" in row(text, "bass") and "-12.0" in row(text, "drums")  # peak of a constant 0.5 / 0.25
    assert "-inf" in row(text, "guitar")
    assert "select a stem" not in text
    surface.handle_key("?")
    text = screen(surface)
    assert all(what in text for _, what in KEYS)
    assert not surface.handle_key("q")


def test_split_keys_and_load_p99():
    assert split_keys("m\x1b[A\x1b[B-\x1b\x1b[C?") == ["m", "up", "down", "-", "esc", "?"]
    host = np.full(100, 256.0)
    total = np.linspace(0.0, 5.333, 100)  # up to one whole 256-sample period at 48 kHz
    assert load_p99(host, total, 48000) == pytest.approx(np.percentile(total / (256 / 48), 99))
    assert load_p99(np.zeros(0), np.zeros(0), 48000) == 0.0


def test_ansi_frame_clips_to_the_terminal_and_keeps_the_styles(surface):
    import re

    from rich.color import ColorSystem

    from rt.tui import AnsiFrame

    frame = AnsiFrame(ColorSystem.EIGHT_BIT).render(surface.lines(), width=50, height=10)
    assert frame.startswith("\x1b[H") and frame.endswith("\x1b[J")
    rows = frame[3:-3].split("\r\n")
    plain = [re.sub(r"\x1b\[[0-9;]*[mK]", "", r) for r in rows]
    assert len(rows) == 10 and max(map(len, plain)) == 50
    assert plain[0].startswith("test title") and "MUTE" not in frame
    assert "\x1b[1;36m" in frame  # the selected stem in bold cyan


def test_a_stream_that_stops_being_called_is_flagged(surface, monkeypatch):
    import rt.tui

    clock = [100.0]
    monkeypatch.setattr(rt.tui.time, "monotonic", lambda: clock[0])
    stems, dry, out = np.zeros((4, 2, 64), np.float32), np.zeros((2, 64), np.float32), np.zeros((2, 64), np.float32)
    surface.mixer.mix_into(stems, dry, 64, out)
    assert "no block metered" not in screen(surface)
    clock[0] += 0.5
    surface.mixer.mix_into(stems, dry, 64, out)  # blocks keep coming
    assert "no block metered" not in screen(surface)
    clock[0] += 2.5  # then none for 2.5 s
    assert "no block metered for 2.5 s" in screen(surface)
