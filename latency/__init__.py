"""stemstream's latency package: compute profiling of the separator and the measured round trip.

- :mod:`latency.profile` (``stemstream profile``): per-block compute time per mode, device,
  channel count and block size; :mod:`latency.plot` draws it.
- :mod:`latency.roundtrip` (``stemstream roundtrip``): impulses and a sweep through the live
  engine on JACK, beside the engine's reported latency parts.

Builds on :mod:`model` and :mod:`rt` (it reads the engine, never the reverse). Nothing is
imported here, so ``python -m latency profile`` needs only torch and numpy.
"""
