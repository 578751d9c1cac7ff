"""The measured round trip through the live engine on a real audio server (JACK).

Impulses and a sweep are played into the live stream's input port by one JACK client and
recorded from its output port by another (:mod:`latency.jackio`); cross-correlation finds
each signal's delay, which is set beside the engine's reported latency split into its parts.

What is measured: the delay between the stream's JACK ports, i.e. the engine (resamplers and
model frame, plus the ring prefill in worker mode) plus any buffering PortAudio adds between JACK and the callback
(none with ``blocksize=0``). The device parts PortAudio reports (``host_input_samples``,
``host_output_samples``: the latencies of the JACK system ports the stream is wired to) lie
outside that path, so the measurement must equal ``engine_samples``; on a real sound card the
end-to-end delay is ``total_samples``.

``path="wet"`` measures the separated output (all stems at 0 dB, wet = 1): it resembles the
input when the stems sum back to the mixture (trained weights, or the untrained filterbank
initialisation, whose stems are each about half the mixture). ``path="dry"`` (wet = 0) sends
the input through the same rings, resamplers and model-latency delay, for any weights.

Three Python audio clients (the stream's callback and the two probes) and, in worker mode, the
inference worker share the GIL; its default 5 ms switch interval is as long as a JACK period, so the
measurement runs with a 0.5 ms interval (restored afterwards).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

import model
from rt.delays import LatencyBreakdown

from .jackio import JackProbe
from .machine import describe_machine
from .signals import ProbeSignal, find_delay, probe_sequence

PATHS = ("wet", "dry")
MIN_CORRELATION = 0.3    # below this the output does not resemble the input: no delay to trust
TOLERANCE_SAMPLES = 1.0  # the target: measured equals reported within one sample
SETTLE_S = 0.3           # stream running before the probe plays
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class SignalDelay:
    """One probe signal's measured delay and its difference from the expected (reported) one."""

    signal: str
    measured_samples: float
    measured_ms: float
    error_samples: float
    correlation: float


@dataclass(frozen=True)
class RoundTripResult:
    """A round-trip measurement.

    ``xruns`` is never 0 when the stream missed a cycle: it is the larger of what JACK and
    PortAudio reported and the cycles the stream demonstrably missed (``missed_cycles``).

    ``agree``: at least two probe signals were found (correlation at least ``MIN_CORRELATION``),
    their median delay is within ``TOLERANCE_SAMPLES`` of the expected one, and so is every
    signal's, except, when the stream missed JACK cycles, signals late by whole periods (a
    missed cycle delays what is in flight by one period) or lost in the missed cycle.
    """

    host_rate_hz: int
    period_samples: int
    path: str
    mode: str                    # the engine's mode: callback or worker
    model: str
    random_weights: bool
    reported: dict[str, float]  # LatencyBreakdown.as_dict(): every part, engine/total samples, total ms
    expected_samples: float      # what the probe's path holds: reported engine_samples
    expected_ms: float
    measured_samples: float      # the median over the probe signals found (NaN if none)
    measured_ms: float
    signals: list[SignalDelay]
    agree: bool
    attempts: int
    xruns: int                   # disturbances seen: max(JACK xruns + stream status flags, missed_cycles)
    jack_xruns: int              # the JACK server's xrun callbacks during the probe
    stream_status_flags: int     # callbacks in which PortAudio flagged an xrun (or other status)
    missed_cycles: int           # JACK cycles in which the stream did not run (counted by samples)
    stream_ran_every_cycle: bool  # missed_cycles == 0
    underrun_samples: int
    recorded_fraction: float
    machine: str
    note: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure_roundtrip(runtime: model.StreamingSeparator, path: str = "wet", model_label: str = "",
                      random_weights: bool = False, prefill_samples: int | None = None, attempts: int = 5,
                      log: Callable[[str], None] = print, mode: str = "auto") -> RoundTripResult:
    """Run the live engine (mono) on the default (JACK) devices and measure its round trip.

    A run in which the stream missed a JACK cycle or the engine underran is repeated (up to
    ``attempts`` times) unless it still agrees (see :class:`RoundTripResult`); the last run is
    reported, with its xrun, underrun and lost-recording counts.
    """
    from rt.live import choose_devices

    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    choice = choose_devices(None, None)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        result = _measure(runtime, choice, path, prefill_samples, attempts, log, mode)
    finally:
        sys.setswitchinterval(switch_interval)
    return dataclasses.replace(result, model=model_label, random_weights=random_weights)


class _Run(NamedTuple):
    """One play/record run: the recording on the signal's timeline and what disturbed it."""

    recorded: np.ndarray
    parts: list[ProbeSignal]
    gap_samples: int
    expected_samples: float
    reported: LatencyBreakdown
    period_samples: int
    mode: str
    jack_xruns: int
    status_flags: int
    missed_cycles: int
    underrun_samples: int
    recorded_fraction: float

    @property
    def locked(self) -> bool:
        """The stream ran in every JACK cycle of the measurement."""
        return self.missed_cycles == 0

    @property
    def xruns(self) -> int:
        return max(self.jack_xruns + self.status_flags, self.missed_cycles)


def _measure(runtime: model.StreamingSeparator, choice, path: str, prefill_samples: int | None,
             attempts: int, log: Callable[[str], None], mode: str) -> RoundTripResult:
    for attempt in range(1, attempts + 1):
        run = _play_and_record(runtime, choice, path, prefill_samples, mode)
        result = _analyse(run, choice.sample_rate_hz, path, attempt)
        log(f"attempt {attempt} ({run.mode} mode): {run.xruns} xrun(s), {run.missed_cycles} missed cycle(s), "
            f"{run.underrun_samples} underrun sample(s), {100 * (1 - run.recorded_fraction):.1f}% of the "
            f"recording lost; {'agree' if result.agree else 'disagree'}")
        # a cycle the stream missed shifts what is in flight by a period, an underrun silences
        # part of the signal: retry such a run unless its result is still clear
        if (run.locked and run.underrun_samples == 0) or result.agree:
            break
    return result


def _play_and_record(runtime: model.StreamingSeparator, choice, path: str, prefill_samples: int | None,
                     mode: str) -> _Run:
    from rt.engine import Engine
    from rt.live import LiveStream

    probe = None
    engine = Engine(runtime, choice.sample_rate_hz, 1, _jack_period(), prefill_samples=prefill_samples, mode=mode)
    try:
        engine.mixer.set_wet(1.0 if path == "wet" else 0.0)
        expected = engine.latency().engine_samples
        gap_s = max(0.05, 2 * expected / choice.sample_rate_hz)
        sequence, parts = probe_sequence(choice.sample_rate_hz, gap_s)
        stream = LiveStream(engine, choice)
        with stream:
            probe = JackProbe(sequence, sequence.shape[0], counter=lambda: engine.samples_in)
            probe.connect("PortAudio.*in", "PortAudio.*out")
            time.sleep(SETTLE_S)
            flags_before = stream.status_flags
            probe.run(timeout_s=10 + 4 * sequence.shape[0] / choice.sample_rate_hz)
            flags = stream.status_flags - flags_before
            reported = stream.latency()
        return _Run(probe.recorded, parts, int(gap_s * choice.sample_rate_hz), expected, reported,
                    probe.period_samples, engine.mode, probe.xruns, flags, probe.missed_cycles,
                    engine.stats().underrun_samples, probe.recorded_fraction)
    finally:
        if probe is not None:
            probe.close()
        engine.close()


def _analyse(run: _Run, rate: int, path: str, attempt: int) -> RoundTripResult:
    expected = run.expected_samples
    signals = []
    for part in run.parts:
        est = find_delay(run.recorded, part, run.gap_samples - 1)
        signals.append(SignalDelay(part.name, est.delay_samples, 1000.0 * est.delay_samples / rate,
                                   est.delay_samples - expected, est.correlation))
    found = [sig for sig in signals if sig.correlation >= MIN_CORRELATION]
    explained = [abs(sig.error_samples) <= TOLERANCE_SAMPLES
                 or (not run.locked and (sig.correlation < MIN_CORRELATION
                                         or _whole_periods_late(sig, run.period_samples)))
                 for sig in signals]
    measured = float(np.median([sig.measured_samples for sig in found])) if found else float("nan")
    agree = len(found) >= 2 and all(explained) and abs(measured - expected) <= TOLERANCE_SAMPLES
    return RoundTripResult(
        host_rate_hz=rate, period_samples=run.period_samples, path=path, mode=run.mode, model="",
        random_weights=False,
        reported=run.reported.as_dict(), expected_samples=expected, expected_ms=1000.0 * expected / rate,
        measured_samples=measured, measured_ms=1000.0 * measured / rate, signals=signals, agree=agree,
        attempts=attempt, xruns=run.xruns, jack_xruns=run.jack_xruns, stream_status_flags=run.status_flags,
        missed_cycles=run.missed_cycles, stream_ran_every_cycle=run.locked,
        underrun_samples=run.underrun_samples, recorded_fraction=run.recorded_fraction,
        machine=describe_machine("cpu"), note=_note(signals, path, run.locked, run.underrun_samples))


def _whole_periods_late(signal: SignalDelay, period: int) -> bool:
    periods = round(signal.error_samples / period)
    return periods >= 1 and abs(signal.error_samples - periods * period) <= TOLERANCE_SAMPLES


def _jack_period() -> int:
    """The JACK server's period (the callback's block with ``blocksize=0``)."""
    import jack

    client = jack.Client("stemstream-roundtrip-query", no_start_server=True)
    try:
        return client.blocksize
    finally:
        client.close()


def _note(signals: list[SignalDelay], path: str, locked: bool, underruns: int) -> str:
    notes = []
    if sum(s.correlation >= MIN_CORRELATION for s in signals) < 2:
        notes.append(f"the {path} output does not resemble the input (correlation below {MIN_CORRELATION}): "
                     + ("its stems do not sum back to the mixture (the model's weights); measure with --path dry"
                        if path == "wet" else "the engine did not pass the signal"))
    if not locked:
        notes.append("the stream missed JACK cycles (xruns): a signal near a missed cycle is delayed by whole "
                     "periods more or lost (retry on a quieter machine)")
    if underruns:
        notes.append(f"the engine underran ({underruns} samples played as silence): retry with a larger "
                     "--prefill-samples (worker mode) or on a quieter machine")
    if not notes:
        worst = max(abs(s.error_samples) for s in signals)
        notes.append(f"measured equals the reported engine latency within {worst:.2f} samples "
                     f"({'within' if worst <= TOLERANCE_SAMPLES else 'beyond'} the {TOLERANCE_SAMPLES:g}-sample target)")
    return "; ".join(notes)


def format_result(result: RoundTripResult) -> str:
    """A few terminal lines: the parts, then each signal's measurement."""
    r = result.reported
    rate = result.host_rate_hz
    lines = [f"round trip at {rate} Hz, JACK period {result.period_samples}, {result.mode} mode, {result.path} path:"]
    for key in ("host_input_samples", "ring_prefill_samples", "resampler_in_samples", "model_samples",
                "resampler_out_samples", "host_output_samples"):
        lines.append(f"  {key:<24}{r[key]:>10.2f} samples {1000 * r[key] / rate:>8.3f} ms")
    lines.append(f"  {'engine (expected)':<24}{result.expected_samples:>10.2f} samples {result.expected_ms:>8.3f} ms")
    lines.append(f"  {'measured (median)':<24}{result.measured_samples:>10.2f} samples {result.measured_ms:>8.3f} ms")
    for s in result.signals:
        lines.append(f"  measured {s.signal:<15}{s.measured_samples:>10.2f} samples {s.measured_ms:>8.3f} ms"
                     f"  (error {s.error_samples:+.2f}, correlation {s.correlation:.2f})")
    lines.append(f"  {'agree' if result.agree else 'DISAGREE'}: {result.note}")
    return "\n".join(lines)
