"""The engine's latency, split into its parts, in host samples."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyBreakdown:
    """Where the delay from an input sample to its output comes from, in host samples.

    ``engine_samples`` is what the engine adds between its callback's input and output
    (prefill + resamplers + model); ``total_samples`` adds what the audio device reports for
    its input and output buffers (0 when driven from a file).
    """

    host_rate_hz: int
    host_input_samples: float   # the device's input latency (PortAudio's report)
    host_output_samples: float  # the device's output latency (PortAudio's report)
    ring_prefill_samples: int   # silence the output ring starts with: absorbs worker jitter
    resampler_in_samples: float   # host -> model rate filter delay, converted to host samples
    model_samples: float          # the separator's latency (frame_size - 1 model samples), in host samples
    resampler_out_samples: float  # model -> host rate filter delay

    @property
    def engine_samples(self) -> float:
        return (self.ring_prefill_samples + self.resampler_in_samples + self.model_samples
                + self.resampler_out_samples)

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
