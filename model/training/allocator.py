"""Keep the heap's freed blocks for reuse during training (glibc ``mallopt``).

By default glibc serves blocks above a dynamic threshold (up to 32 MiB) with ``mmap`` and hands
them back to the kernel when freed, so each of a training step's large temporaries (spectra,
frames, activations: 5-25 MB each) faults its pages in afresh every step; with two threads the
page faults also contend. Raising the mmap threshold to its maximum and trimming only a 2 GiB free top keeps
those blocks in the heap: the process keeps its peak footprint, and a training step of the
shipped model on the 2-core dev machine got 7-18 % faster (docs/benchmarks.md).
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX_BYTES = 32 * 1024 * 1024  # glibc's ceiling on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_NO_TRIM_BYTES = 2 ** 31 - 1  # mallopt takes an int: trim only a free top of 2 GiB


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold to its maximum and trimming to a 2 GiB free top; ``False`` (nothing changed)
    where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    threshold_ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX_BYTES) == 1
    return threshold_ok and libc.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM_BYTES) == 1
