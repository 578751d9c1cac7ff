"""A JACK server (dummy driver) for tests: reuse a running one or start a private one."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

JACK_RATE_HZ = 48000
JACK_PERIOD_SAMPLES = 256


def server_running() -> bool:
    """Whether the JACK server named by ``JACK_DEFAULT_SERVER`` (or the default) answers."""
    return subprocess.run(["jack_wait", "-c"], capture_output=True, text=True).stdout.strip() == "running"


@contextmanager
def jack_server() -> Iterator[bool]:
    """Yields ``True`` once a server is up (a private one named ``stemstream-test-<pid>`` if none runs).

    PortAudio is (re)initialised after the server is up and terminated before a server
    started here is killed (in the other order the process aborts at exit).
    """
    import sounddevice as sd

    proc = None
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    if not server_running():
        name = f"stemstream-test-{os.getpid()}"
        os.environ["JACK_DEFAULT_SERVER"] = name
        env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
        proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE_HZ),
                                 "-p", str(JACK_PERIOD_SAMPLES)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, check=False)
        if not server_running():
            proc.kill()
            raise RuntimeError("jackd did not come up within 10 s")
    sd._terminate()
    sd._initialize()
    try:
        yield True
    finally:
        sd._terminate()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            if previous is None:
                os.environ.pop("JACK_DEFAULT_SERVER", None)
            else:
                os.environ["JACK_DEFAULT_SERVER"] = previous
        sd._initialize()


def jackd_installed() -> bool:
    return shutil.which("jackd") is not None and shutil.which("jack_wait") is not None


def wait_for_ports(client, pattern: str, count: int, timeout_s: float = 5.0) -> list[str]:
    """Names of ``count`` ports matching ``pattern`` once they exist."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ports = [p.name for p in client.get_ports(pattern)]
        if len(ports) >= count:
            return ports
        time.sleep(0.05)
    raise RuntimeError(f"JACK ports {pattern!r} did not appear")
