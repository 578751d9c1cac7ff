"""``stemstream live`` used as a person uses it: in a terminal (tmux), keys typed, the screen read, the sound heard.

tmux runs ``stemstream live`` on a JACK server of this test's own (dummy driver, 48 kHz / 256 as
the CI's default server: with a server of its own the program's PortAudio client is the only one,
whatever other tests run at the same time); a JACK client of this test plays noise into the
program's input ports and records its output port.
Keys go in with ``tmux send-keys``, the screen comes back with ``tmux capture-pane``, and
every change typed must show on the screen and in the recorded audio.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import model
from tests.helpers import small_config
from tests.rt.jack_server import jackd_installed

pytestmark = pytest.mark.skipif(not (jackd_installed() and shutil.which("tmux")), reason="needs jackd and tmux")

NOISE_RMS = 0.2
RATE_HZ = 48000             # the CI's JACK server
STARTUP_TIMEOUT_S = 60.0    # model load, numba cache, the engine's mode measurement, on a loaded machine
_LEVELS = re.compile(r"\s(-?\d+\.\d|-inf)\s+(-?\d+\.\d|-inf)\s+([+-]\d+\.\d|-inf) dB")


class Tmux:
    """A tmux server of its own (own socket, this process's environment) running ``command`` in one window."""

    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.socket = f"stemstream-test-{os.getpid()}"
        self._run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)

    def _run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "t")

    def wait_for(self, predicate, timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.screen()
            try:
                if predicate(text):
                    return text
            except StopIteration:  # the line looked for is not drawn yet
                pass
            time.sleep(0.1)
        raise AssertionError(f"the screen never showed {what}; it shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


# The JACK client of the test runs in a process of its own: libjack serves one server per process,
# and the test process may be a client of the default server already (other rt tests, PortAudio).
_NOISE_LOOP = r"""
import json, sys
import numpy as np, jack
rate, rms, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
# a 1 s loop of noise below 8 kHz: inside the model's band (22.05 kHz rate) too, so the input meter
# (the mixer's dry signal) reads the input whole whether or not the engine's dry path is full band
spectrum = np.fft.rfft(np.random.default_rng(7).standard_normal(rate))
spectrum[np.fft.rfftfreq(rate, 1 / rate) > 8000] = 0
noise = np.fft.irfft(spectrum, rate)
noise = (rms * noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)
recorded = np.zeros(int(seconds * rate), np.float32)
pos = [0, 0]  # played, recorded
client = jack.Client("stemstream-tui-test")
out, inp = client.outports.register("out"), client.inports.register("in")

@client.set_process_callback
def process(frames):
    out.get_array()[:] = noise[(pos[0] + np.arange(frames)) % rate]
    pos[0] += frames
    k = max(0, min(frames, len(recorded) - pos[1]))
    recorded[pos[1]:pos[1] + k] = inp.get_array()[:k]
    pos[1] += k

client.activate()
print("ready", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "clients":
        reply = sorted({p.name.split(":")[0] for p in client.get_ports("PortAudio")})
    elif cmd == "connect":
        client.connect(*args)
        reply = "ok"
    elif cmd == "level":  # RMS over the last seconds' 256-sample chunks that are not silent (xrun gaps)
        x = recorded[max(0, pos[1] - int(float(args[0]) * rate)):pos[1]]
        power = (x[: len(x) // 256 * 256].reshape(-1, 256).astype(np.float64) ** 2).mean(axis=1)
        sounding = power[power > 0]
        reply = float(np.sqrt(sounding.mean())) if len(sounding) else 0.0
    else:
        break
    print(json.dumps(reply), flush=True)
client.deactivate()
client.close()
"""


class NoiseLoop:
    """A JACK client (in its own process) that plays stationary noise and records what it is connected to."""

    def __init__(self, server: str, seconds: float) -> None:
        env = {**os.environ, "JACK_DEFAULT_SERVER": server}
        self.proc = subprocess.Popen([sys.executable, "-c", _NOISE_LOOP, str(RATE_HZ), str(NOISE_RMS), str(seconds)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def _ask(self, *words) -> object:
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def portaudio_clients(self) -> set[str]:
        return set(self._ask("clients"))

    def connect(self, source: str, destination: str) -> None:
        self._ask("connect", source, destination)

    def level(self, seconds: float) -> float:
        """RMS of the last ``seconds`` recorded (silent 256-sample chunks, xrun gaps, left out; 0 if all are)."""
        return float(self._ask("level", seconds))

    def close(self) -> None:
        try:
            self.proc.communicate("quit\n", timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _row(text: str, stem: str) -> str:
    return next(line for line in text.splitlines() if re.search(rf"\d {stem}\s", line))


def _row_named(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(label))


def _levels(row: str) -> tuple[float, float, float]:
    """A stem row's peak and RMS (dBFS) and gain (dB), as the screen shows them."""
    match = _LEVELS.search(row)
    assert match, row
    return tuple(float(v) for v in match.groups())


@pytest.fixture
def jack_server_of_our_own():
    """A private JACK server (dummy driver, 48 kHz / 256) named ``stemstream-tui-<pid>``; its name."""
    name = f"stemstream-tui-{os.getpid()}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_DEFAULT_SERVER": name}
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(RATE_HZ), "-p", "256"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, capture_output=True, check=False)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "small"
    model.save_separator(model.RQVAESeparator(small_config()).eval(), path)
    return path


def test_keys_typed_in_tmux_mute_and_change_gain_on_screen_and_in_the_sound(jack_server_of_our_own, model_dir,
                                                                              tmp_path):
    server = jack_server_of_our_own
    loop = NoiseLoop(server, seconds=90.0)
    before = loop.portaudio_clients()
    err_file, rc_file = tmp_path / "stderr.txt", tmp_path / "rc.txt"
    command = (f"cd {os.getcwd()} && env -u COLUMNS -u LINES JACK_DEFAULT_SERVER={server} "
               f"{sys.executable} -m stemstream_cli live "
               f"--model {model_dir} --stems bass --prefill-ms 40 2> {err_file}; echo $? > {rc_file}; sleep 60")
    tmux = Tmux(command)
    try:
        tmux.wait_for(lambda s: "stems (post-gain)" in s, STARTUP_TIMEOUT_S, "the control surface")
        new = loop.portaudio_clients() - before
        assert len(new) == 1, f"expected one new PortAudio client, found {new}"
        name = new.pop()
        for port in (f"{name}:in_0", f"{name}:in_1"):
            loop.connect("stemstream-tui-test:out", port)
        loop.connect(f"{name}:out_0", "stemstream-tui-test:in")
        time.sleep(1.5)  # output flows; the meters' RMS average (0.3 s time constant) settles
        screen = tmux.screen()
        assert _levels(_row(screen, "bass"))[2] == 0.0 and "not in --stems" in _row(screen, "drums")
        at_0_db = loop.level(0.5)
        assert at_0_db > 0.02 * NOISE_RMS, f"no output heard: {at_0_db}"
        input_rms_db = float(_row_named(screen, "input").split()[-1])
        assert input_rms_db == pytest.approx(20 * np.log10(NOISE_RMS), abs=1.5)  # the meter shows the input

        tmux.keys(*["-"] * 6)  # the cursor starts on stem 1, bass: -6 dB
        tmux.wait_for(lambda s: _levels(_row(s, "bass"))[2] == -6.0, 10, "bass at -6 dB")
        time.sleep(1.0)
        at_minus_6 = loop.level(0.5)
        assert at_minus_6 / at_0_db == pytest.approx(10 ** (-6 / 20), rel=0.1)  # heard 6 dB quieter
        screen = tmux.screen()
        shown_rms_db = _levels(_row(screen, "bass"))[1]
        assert shown_rms_db == pytest.approx(20 * np.log10(at_minus_6), abs=2.0)  # the meter shows what is heard
        assert float(_row_named(screen, "output").split()[-1]) == pytest.approx(shown_rms_db, abs=0.5)

        tmux.keys("m")
        tmux.wait_for(lambda s: "MUTE" in _row(s, "bass"), 10, "bass muted")
        time.sleep(1.0)
        assert loop.level(0.5) == 0.0  # wet 100 %, the only heard stem muted: silence
        # and its meter falls (at the RMS average's pace per block played: slower when the machine drops cycles)
        tmux.wait_for(lambda s: _levels(_row(s, "bass"))[1] < shown_rms_db - 10, 10, "the bass meter falling")

        tmux.keys("q")
        deadline = time.monotonic() + 15
        while not (rc_file.exists() and rc_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc_file.read_text().strip() == "0", err_file.read_text()
        assert "stopped:" in err_file.read_text()  # the usual summary
    finally:
        tmux.close()
        loop.close()


def test_without_a_terminal_live_prints_the_status_line(jack, model_dir):
    proc = subprocess.run([sys.executable, "-m", "stemstream_cli", "live", "--model", str(model_dir), "--stems",
                           "bass", "--prefill-ms", "40", "--seconds", "1.5"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "underruns" in proc.stderr and "xruns" in proc.stderr and "stopped:" in proc.stderr
    assert "\x1b[?1049h" not in proc.stdout + proc.stderr  # no alternate screen
