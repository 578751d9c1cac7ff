"""MIDI control: default mapping, counting of unknown/malformed messages, learn, mapping files,
and a CC sent through a real JACK MIDI port."""
from __future__ import annotations

import time

import numpy as np
import pytest

from rt.midi import MidiController, MidiMapping, cc_to_gain_db, list_input_ports
from rt.mixer import StemMixer
from tests.rt.jack_server import jackd_installed

STEMS = ("bass", "drums", "guitar", "piano")


def controller() -> MidiController:
    return MidiController(StemMixer(STEMS, 1, 22050))


def test_default_mapping_notes_toggle_mutes_ccs_set_gains_and_wet():
    c = controller()
    assert c.handle([0x90, 37, 100])  # note on, drums
    assert c.mixer.state().muted == ("drums",)
    assert not c.handle([0x80, 37, 0])  # note off: nothing
    assert c.handle([0x99, 37, 90])  # any channel by default: toggles back
    assert c.mixer.state().muted == ()
    assert c.handle([0xB0, 21, 127])
    assert c.mixer.state().gains_db["bass"] == pytest.approx(6.0)
    assert c.handle([0xB0, 24, 0])
    assert c.mixer.state().gains_db["piano"] == float("-inf")
    assert c.handle([0xB0, 20, 0])
    assert c.mixer.state().wet == 0.0
    assert (c.handled, c.unknown, c.malformed) == (5, 0, 0)
    assert cc_to_gain_db(1) == -60.0


def test_unknown_and_malformed_messages_are_ignored_and_counted():
    c = controller()
    before = c.mixer.state()
    for unknown in ([0x90, 60, 100], [0xB0, 99, 5], [0xE0, 0, 64], [0xC0, 5]):
        assert not c.handle(unknown)
    for malformed in ([], [0xB0, 21], [0xB0, 21, 200], [0x40, 1, 2], [0xF8], [0xB0, 21, 1, 2]):
        assert not c.handle(malformed)
    assert (c.unknown, c.malformed, c.handled) == (4, 6, 0)
    assert c.mixer.state() == before


def test_learn_binds_the_next_control_and_a_channel_filter_applies():
    c = controller()
    c.learn("gain:guitar")
    assert c.handle([0xB3, 74, 127])
    assert c.mapping.gain_ccs[74] == "guitar" and 23 not in c.mapping.gain_ccs
    c.handle([0xB0, 74, 1])
    assert c.mixer.state().gains_db["guitar"] == -60.0
    c.learn("mute:bass")
    assert not c.handle([0xB0, 7, 1]) and c._learn_target == "mute:bass"  # a CC does not bind a mute
    assert c.handle([0x90, 50, 64])
    assert c.mapping.notes[50] == "bass" and 36 not in c.mapping.notes
    with pytest.raises(ValueError, match="learn target must be"):
        c.learn("gain:vocals")
    only_ch2 = MidiController(StemMixer(STEMS, 1, 22050), MidiMapping.default(STEMS))
    only_ch2.mapping.channel = 2
    assert not only_ch2.handle([0xB0, 21, 0]) and only_ch2.handle([0xB1, 21, 0])


def test_mapping_files_round_trip_and_bad_files_name_the_problem(tmp_path):
    mapping = MidiMapping({40: "drums"}, {70: "bass"}, wet_cc=71, channel=10)
    path = tmp_path / "map.json"
    path.write_text(mapping.to_json())
    assert MidiMapping.load(path, STEMS) == mapping
    path.write_text('{"notes": {"40": "vocals"}}')
    with pytest.raises(ValueError, match="unknown stem 'vocals'; this model's stems are: bass, drums"):
        MidiMapping.load(path, STEMS)
    path.write_text('{"cc": {}}')
    with pytest.raises(ValueError, match=r"unknown keys \['cc'\]"):
        MidiMapping.load(path, STEMS)
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        MidiMapping.load(path, STEMS)
    toml = tmp_path / "map.toml"
    toml.write_text('wet_cc = 71\nchannel = 10\n[notes]\n40 = "drums"\n[gain_ccs]\n70 = "bass"\n')
    assert MidiMapping.load(toml, STEMS) == mapping


@pytest.mark.skipif(not jackd_installed(), reason="jackd (jackd2) is not installed")
def test_a_cc_sent_through_a_jack_midi_port_changes_a_stem_gain(jack):
    import rtmidi

    c = controller()
    assert c.open(virtual=True, client_name="stemstream-midi-test") == "stemstream-midi-test:midi_in"
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="stemstream-midi-sender")
    out.open_virtual_port("out")
    assert "stemstream-midi-sender:out" in list_input_ports()  # what `stemstream devices` shows
    try:
        client = jack.Client("stemstream-midi-connector")
        client.connect("stemstream-midi-sender:out", "stemstream-midi-test:midi_in")
        deadline = time.monotonic() + 5
        while c.handled == 0 and time.monotonic() < deadline:
            out.send_message([0xB0, 22, 64])  # drums gain
            time.sleep(0.05)
        client.close()
        expected = cc_to_gain_db(64)
        assert c.mixer.state().gains_db["drums"] == pytest.approx(expected)
        assert c.unknown == 0 and c.malformed == 0
        # and the mixer applies it: a settled mix of ones has the drums at that gain
        c.mixer.select(["drums"])
        c.mixer.settle()
        mixed = c.mixer.mix(np.ones((4, 1, 8), np.float32), np.zeros((1, 8), np.float32))
        np.testing.assert_allclose(mixed, 10 ** (expected / 20), rtol=1e-5)
        # --midi-port NAME: open an existing source port by a part of its name
        by_name = controller()
        assert by_name.open(port="midi-sender", client_name="stemstream-midi-test2") == "stemstream-midi-sender:out"
        deadline = time.monotonic() + 5
        while by_name.handled == 0 and time.monotonic() < deadline:
            out.send_message([0xB0, 21, 1])  # bass gain -60 dB
            time.sleep(0.05)
        by_name.close()
        assert by_name.mixer.state().gains_db["bass"] == -60.0
        with pytest.raises(ValueError, match="no MIDI input port matches 'nonexistent'; ports: .*midi-sender"):
            controller().open(port="nonexistent")
    finally:
        out.close_port()
        out.delete()
        c.close()
