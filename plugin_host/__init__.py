"""stemstream's pedalboard-compatible processor, hybrid effect chains, and file separation.

``StemSeparator`` runs the streaming separator with pedalboard's call shape at any sample rate;
``Chain`` runs native pedalboard plugins and Python processors together, latency compensated.
Builds on :mod:`model` and :mod:`rt` (its streaming resampler).
"""
from .chain import Chain
from .separator import StemSeparator

__all__ = ["Chain", "StemSeparator"]
