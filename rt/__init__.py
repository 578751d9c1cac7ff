"""stemstream's real-time engine: lock-free ring buffer, streaming resampler, stem mixer,
inference worker, live loop on sounddevice, MIDI control.

Builds on :mod:`model`; the latency profiler reads the engine's timings
(``Engine.latency()``, ``Engine.timings()``, ``Engine.stats()``), never the reverse.
"""
from .engine import BlockTiming, Engine, EngineStats
from .filedrive import drive
from .delays import LatencyBreakdown
from .mixer import MixerState, StemMixer
from .resample import StreamingResampler
from .ring import RingBuffer

__all__ = ["BlockTiming", "Engine", "EngineStats", "LatencyBreakdown", "MixerState", "RingBuffer", "StemMixer",
           "StreamingResampler", "drive"]
