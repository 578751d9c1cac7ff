"""Two JACK clients around a stream under test: one plays a signal into it, one records it.

The player feeds the stream's input port and the recorder reads its output port, so in the
JACK graph they run before and after it in the same cycle and add no delay. Both note JACK's
frame time when the signal starts, so the recording is placed on the played signal's timeline
without trusting anything the stream under test reports.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

CLIENT_PREFIX = "stemstream-roundtrip"


class JackProbeError(RuntimeError):
    """No JACK server, or the stream's ports never appeared."""


class JackProbe:
    """Plays ``signal [T]`` into ``input_port`` and records ``record_samples`` from ``output_port``.

    ``run()`` waits for the recording to fill; ``recorded`` then holds the output on the
    signal's timeline (index 0 = the JACK frame the signal's first sample was played in).
    ``xruns`` counts the JACK server's xruns while armed. ``counter`` (e.g. the samples the
    stream under test has taken) is read in every played cycle: :attr:`counted_every_cycle`
    then says whether the stream ran in every JACK cycle of the measurement, i.e. whether its
    timeline stayed locked to JACK's whatever xruns occurred elsewhere.
    """

    def __init__(self, signal: np.ndarray, record_samples: int, counter: Callable[[], int] | None = None) -> None:
        try:
            import jack
        except OSError as exc:  # libjack missing
            raise JackProbeError(f"the JACK library is not available ({exc}); install jackd2") from exc
        self.signal = np.ascontiguousarray(signal, np.float32)
        self.recorded = np.zeros(record_samples, np.float32)
        self.xruns = 0
        self._armed = False
        self._rec_filled = 0
        self._counter = counter
        self._first_count = self._last_count = 0
        self._last_frame = 0
        self._play_frame: int | None = None
        self._done = threading.Event()
        try:
            self.player = jack.Client(f"{CLIENT_PREFIX}-player", no_start_server=True)
            self.recorder = jack.Client(f"{CLIENT_PREFIX}-recorder", no_start_server=True)
        except jack.JackOpenError as exc:
            raise JackProbeError(f"no JACK server answers ({exc}); start one, e.g. "
                                 "`jackd --no-realtime -d dummy -r 48000 -p 256 &`") from exc
        self.rate_hz = self.player.samplerate
        self.period_samples = self.player.blocksize
        self._out = self.player.outports.register("out")
        self._in = self.recorder.inports.register("in")
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.recorder.set_xrun_callback(self._xrun)
        self.player.activate()
        self.recorder.activate()

    def connect(self, input_port_pattern: str, output_port_pattern: str, timeout_s: float = 5.0) -> None:
        """Connect the player to the first port matching ``input_port_pattern`` (the stream's
        input) and the first matching ``output_port_pattern`` (its output) to the recorder."""
        self.player.connect(self._out, self._wait_port(input_port_pattern, is_input=True, timeout_s=timeout_s))
        self.recorder.connect(self._wait_port(output_port_pattern, is_input=False, timeout_s=timeout_s), self._in)

    def _wait_port(self, pattern: str, is_input: bool, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ports = self.player.get_ports(pattern, is_audio=True, is_input=is_input, is_output=not is_input)
            if ports:
                return ports[0].name
            time.sleep(0.05)
        raise JackProbeError(f"no JACK {'input' if is_input else 'output'} port matching {pattern!r} "
                             f"appeared within {timeout_s} s")

    def run(self, timeout_s: float) -> None:
        """Play the signal and record until the recording is full (or raise after ``timeout_s``)."""
        self.xruns = 0
        self._armed = True
        if not self._done.wait(timeout_s):
            raise JackProbeError(f"the recording did not fill within {timeout_s} s (is the JACK server running?)")

    @property
    def recorded_fraction(self) -> float:
        """Share of the recording's samples that a recorder cycle filled (cycles lost to xruns leave zeros)."""
        return self._rec_filled / self.recorded.shape[0]

    @property
    def counted_every_cycle(self) -> bool:
        """Whether ``counter`` advanced by exactly the JACK frames between the first and last played cycle."""
        return self._last_count - self._first_count == self._last_frame

    @property
    def missed_cycles(self) -> int:
        """JACK cycles (rounded up) between the first and last played cycle in which ``counter`` did not
        advance, i.e. in which the stream under test did not run (0 when it ran every cycle)."""
        missing = self._last_frame - (self._last_count - self._first_count)
        return max(0, -(-missing // self.period_samples))

    # JACK process callbacks: copies into preallocated arrays only. Each cycle is placed by its
    # JACK frame time, so a cycle a late client missed leaves a gap instead of shifting the rest.
    def _since_start(self, client) -> int:
        return (client.last_frame_time - self._play_frame) & 0xFFFFFFFF

    def _play(self, frames: int) -> None:
        buf = self._out.get_array()
        if not self._armed:
            buf.fill(0.0)
            return
        if self._play_frame is None:
            self._play_frame = self.player.last_frame_time
            self._first_count = self._counter() if self._counter else 0
        p = self._since_start(self.player)
        if self._counter is not None:
            self._last_count, self._last_frame = self._counter(), p
        k = max(0, min(frames, self.signal.shape[0] - p))
        buf[:k] = self.signal[p:p + k]
        buf[k:] = 0.0

    def _record(self, frames: int) -> None:
        if self._play_frame is None or self._done.is_set():
            return
        r = self._since_start(self.recorder)
        k = max(0, min(frames, self.recorded.shape[0] - r))
        self.recorded[r:r + k] = self._in.get_array()[:k]
        self._rec_filled += k
        if r + frames >= self.recorded.shape[0]:
            self._done.set()

    def _xrun(self, _delay_usecs: float) -> None:
        if self._armed:
            self.xruns += 1

    def close(self) -> None:
        for client in (self.player, self.recorder):
            client.deactivate()
            client.close()
