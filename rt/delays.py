"""The engine's latency, split into its parts, in host samples; one function computes it for every user."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from .resample import StreamingResampler, filter_delay

if TYPE_CHECKING:
    from model import StreamingSeparator


@dataclass(frozen=True)
class LatencyBreakdown:
    """Where the delay from an input sample to its output comes from, in host samples.

    ``engine_samples`` is what the engine adds between its callback's input and output
    (prefill + resamplers + model); ``total_samples`` adds what the audio device reports for
    its input and output buffers (0 when driven from a file). The resamplers' and the model's
    parts are floats for reports; their exact sum is ``pipeline_samples`` (whole host samples
    by construction, see :func:`output_delay_padding`), which floats summed again could miss
    (625.0000000000001 for a 44.1 kHz model at 96 kHz).
    """

    host_rate_hz: int
    host_input_samples: float   # the device's input latency (PortAudio's report)
    host_output_samples: float  # the device's output latency (PortAudio's report)
    ring_prefill_samples: int   # silence the output ring starts with: absorbs worker jitter (0 in callback mode)
    resampler_in_samples: float   # host -> model rate filter delay, converted to host samples
    model_samples: float          # the separator's latency (frame - 1 + overlap model samples), in host samples
    resampler_out_samples: float  # model -> host rate filter delay
    pipeline_samples: float       # resampler in + model + resampler out, summed exactly

    @property
    def engine_samples(self) -> float:
        return self.ring_prefill_samples + self.pipeline_samples

    @property
    def total_samples(self) -> float:
        return self.host_input_samples + self.engine_samples + self.host_output_samples

    @property
    def total_ms(self) -> float:
        return 1000.0 * self.total_samples / self.host_rate_hz

    def as_dict(self) -> dict[str, float]:
        """Every part plus ``engine_samples``, ``total_samples`` and ``total_ms`` (for JSON and profilers)."""
        parts = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {**parts, "engine_samples": self.engine_samples, "total_samples": self.total_samples,
                "total_ms": self.total_ms}


def pipeline_delay(host_rate_hz: int, model_rate_hz: int, model_latency_samples: int,
                   delay_padding: int = 0) -> Fraction:
    """Exact delay of input resampler + model + output resampler (padded by ``delay_padding``
    upsampled samples), in host samples."""
    return ((filter_delay(host_rate_hz, model_rate_hz) + model_latency_samples) * Fraction(host_rate_hz, model_rate_hz)
            + filter_delay(model_rate_hz, host_rate_hz, delay_padding))


def output_delay_padding(host_rate_hz: int, model_rate_hz: int, model_latency_samples: int) -> int:
    """Upsampled-rate samples of extra delay for the output resampler that make the whole
    pipeline's delay (input resampler + model + output resampler) a whole number of host samples.

    Zero when the host rate is a multiple of the model's (44.1 kHz over 22.05 kHz); at 48 kHz over
    22.05 kHz it adds 68/147 of a host sample (363.54 -> 364). A whole delay lets the full-band step
    (:mod:`rt.fullband`) line the input up with the stems sample for sample.
    """
    if host_rate_hz == model_rate_hz:
        return 0
    total = pipeline_delay(host_rate_hz, model_rate_hz, model_latency_samples)  # unpadded
    down = model_rate_hz // math.gcd(host_rate_hz, model_rate_hz)  # one padding sample: 1 / down host samples
    return int((-total * down) % down)


def resamplers(runtime: "StreamingSeparator", host_rate_hz: int, channels_in: int,
               channels_out: int) -> tuple[StreamingResampler, StreamingResampler]:
    """The pipeline's input (host -> model rate, ``channels_in``) and output (model -> host rate,
    ``channels_out``) resamplers, the output one padded by :func:`output_delay_padding`."""
    padding = output_delay_padding(host_rate_hz, runtime.sample_rate_hz, runtime.latency_samples)
    return (StreamingResampler(host_rate_hz, runtime.sample_rate_hz, channels_in),
            StreamingResampler(runtime.sample_rate_hz, host_rate_hz, channels_out, delay_padding=padding))


def latency_breakdown(runtime: "StreamingSeparator", host_rate_hz: int, prefill_samples: int = 0,
                      host_input_samples: float = 0.0, host_output_samples: float = 0.0) -> LatencyBreakdown:
    """Delay from input to output of ``runtime`` run at ``host_rate_hz`` (resampled to the model's
    rate and back when they differ), in host samples, by part; ``prefill_samples`` of output
    buffering and the device's reported latencies are added as given.

    The one latency sum of the project: the engine (both modes) and the plugin host use it.
    """
    model_rate_hz = runtime.sample_rate_hz
    to_host = host_rate_hz / model_rate_hz
    padding = output_delay_padding(host_rate_hz, model_rate_hz, runtime.latency_samples)
    rs_in = float(filter_delay(host_rate_hz, model_rate_hz))  # model samples
    rs_out = float(filter_delay(model_rate_hz, host_rate_hz, padding))
    return LatencyBreakdown(host_rate_hz=int(host_rate_hz), host_input_samples=float(host_input_samples),
                            host_output_samples=float(host_output_samples), ring_prefill_samples=int(prefill_samples),
                            resampler_in_samples=rs_in * to_host, model_samples=runtime.latency_samples * to_host,
                            resampler_out_samples=rs_out,
                            pipeline_samples=float(pipeline_delay(host_rate_hz, model_rate_hz, runtime.latency_samples,
                                                                  padding)))
