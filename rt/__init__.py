"""stemstream's real-time engine: lock-free ring buffer, streaming resampler, stem mixer,
inference worker, live loop on sounddevice, MIDI control.

Builds on :mod:`model`; the latency profiler reads the engine's timings, never the reverse.
"""
from .resample import StreamingResampler
from .ring import RingBuffer

__all__ = ["RingBuffer", "StreamingResampler"]
