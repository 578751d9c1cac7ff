"""``RingBuffer``: a lock-free single-producer / single-consumer float32 ring of ``[C, capacity]``.

The producer thread only ever writes the write counter, the consumer thread only the read
counter; both are monotonically increasing int64 counters in separate numpy arrays. The hot
paths are numba ``@njit(cache=True)`` kernels over preallocated arrays: no allocation per call.

What makes it thread-safe is the GIL, not memory ordering: the kernels keep the GIL (no
``nogil``), so a write kernel (samples, then its counter) and a read kernel never run at the
same time, and each sees the other's completed stores. The kernels issue no fences or atomic
operations; the source order "samples first, counter last" is what a nogil or C port would
need, but numba/LLVM may reorder plain stores, so without the GIL this ring would need
explicit atomics. One writer per counter keeps producer and consumer from ever writing the
same word. (A Python audio callback holds the GIL anyway, and a block copy takes microseconds.)

Overflow policy: ``write`` never overwrites unread samples. When the ring is full it writes
what fits, drops the newest rest and adds the dropped samples to ``overflows``.
Underflow policy: ``read_into`` reads what is there, fills the rest of ``out`` with zeros
(silence) and adds the missing samples to ``underflows``.
"""
from __future__ import annotations

import numba
import numpy as np

_WRITE = 0  # slot of the write counter in the writer's array (its second slot: overflows)
_READ = 0   # slot of the read counter in the reader's array (its second slot: underflows)


@numba.njit(cache=True)
def _write_kernel(buf, writer, reader, x, frame_major):
    """Copy ``x`` (``[C, n]``, or ``[n, C]`` when ``frame_major``) into ``buf``; return samples written."""
    capacity = buf.shape[1]
    n = x.shape[0] if frame_major else x.shape[1]
    w = writer[0]
    todo = min(n, capacity - (w - reader[0]))
    start = w % capacity
    first = min(todo, capacity - start)  # up to the end of the buffer, then from its start
    for c in range(buf.shape[0]):
        if frame_major:
            for k in range(first):
                buf[c, start + k] = x[k, c]
            for k in range(first, todo):
                buf[c, k - first] = x[k, c]
        else:
            buf[c, start:start + first] = x[c, :first]
            buf[c, :todo - first] = x[c, first:todo]
    writer[1] += n - todo
    writer[0] = w + todo  # after the samples (ordering guaranteed by the GIL, see the module docstring)
    return todo


@numba.njit(cache=True)
def _read_kernel(buf, writer, reader, out, frame_major):
    """Copy up to ``n`` samples into ``out``, zero-fill the rest; return samples read."""
    capacity = buf.shape[1]
    n = out.shape[0] if frame_major else out.shape[1]
    r = reader[0]
    todo = min(n, writer[0] - r)
    start = r % capacity
    first = min(todo, capacity - start)
    for c in range(buf.shape[0]):
        if frame_major:
            for k in range(first):
                out[k, c] = buf[c, start + k]
            for k in range(first, todo):
                out[k, c] = buf[c, k - first]
            for k in range(todo, n):
                out[k, c] = 0.0
        else:
            out[c, :first] = buf[c, start:start + first]
            out[c, first:todo] = buf[c, :todo - first]
            out[c, todo:] = 0.0
    reader[1] += n - todo
    reader[0] = r + todo  # after the samples were taken (ordering guaranteed by the GIL)
    return todo


class RingBuffer:
    """Lock-free SPSC ring of ``channels`` x ``capacity`` float32 samples.

    One producer thread calls ``write``/``write_frames``; one consumer thread calls
    ``read_into``/``read_frames_into``/``clear``. Arrays passed in must be float32 with the
    ring's channel count (``[C, n]``, or ``[n, C]`` for the ``*_frames`` variants that take
    sounddevice's frame-major blocks without a transposed copy); nothing is converted, so
    nothing is allocated.
    """

    def __init__(self, channels: int, capacity: int) -> None:
        if channels < 1 or capacity < 1:
            raise ValueError(f"a ring needs channels >= 1 and capacity >= 1, got {channels} and {capacity}")
        self.channels = int(channels)
        self.capacity = int(capacity)
        self._buf = np.zeros((self.channels, self.capacity), np.float32)
        self._writer = np.zeros(8, np.int64)  # [write counter, overflowed samples, padding]
        self._reader = np.zeros(8, np.int64)  # [read counter, underflowed samples, padding]

    # ------------------------------------------------------------------ producer side
    def write(self, x: np.ndarray) -> int:
        """Append ``x [C, n]``; returns samples written (fewer than ``n`` when full, see overflow policy)."""
        self._check(x, x.shape[0] if x.ndim == 2 else -1)
        return _write_kernel(self._buf, self._writer, self._reader, x, False)

    def write_frames(self, x: np.ndarray) -> int:
        """Append frame-major ``x [n, C]`` (sounddevice's layout); returns samples written."""
        self._check(x, x.shape[1] if x.ndim == 2 else -1)
        return _write_kernel(self._buf, self._writer, self._reader, x, True)

    # ------------------------------------------------------------------ consumer side
    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out [C, n]``; returns samples read (the rest of ``out`` is zeroed, see underflow policy)."""
        self._check(out, out.shape[0] if out.ndim == 2 else -1)
        return _read_kernel(self._buf, self._writer, self._reader, out, False)

    def read_frames_into(self, out: np.ndarray) -> int:
        """Fill frame-major ``out [n, C]``; returns samples read (the rest zeroed)."""
        self._check(out, out.shape[1] if out.ndim == 2 else -1)
        return _read_kernel(self._buf, self._writer, self._reader, out, True)

    def clear(self) -> None:
        """Discard everything unread (consumer side: moves the read counter to the write counter)."""
        self._reader[_READ] = self._writer[_WRITE]

    # ------------------------------------------------------------------ state
    @property
    def available(self) -> int:
        """Samples ready to read."""
        return int(self._writer[_WRITE] - self._reader[_READ])

    @property
    def space(self) -> int:
        """Samples that can be written without overflow."""
        return self.capacity - self.available

    @property
    def overflows(self) -> int:
        """Samples dropped by ``write`` because the ring was full."""
        return int(self._writer[1])

    @property
    def underflows(self) -> int:
        """Samples ``read_into`` had to zero-fill because the ring was empty."""
        return int(self._reader[1])

    @property
    def total_written(self) -> int:
        """Samples written since creation."""
        return int(self._writer[_WRITE])

    @property
    def total_read(self) -> int:
        """Samples read (or cleared) since creation."""
        return int(self._reader[_READ])

    def _check(self, x: np.ndarray, channels: int) -> None:
        if x.dtype != np.float32 or channels != self.channels:
            raise ValueError(f"ring of {self.channels} channel(s) takes float32 blocks of {self.channels} "
                             f"channel(s); got dtype {x.dtype}, shape {x.shape}")


def warmup() -> None:
    """Compile every ring kernel signature a stream uses (contiguous and strided blocks) before it starts."""
    ring = RingBuffer(2, 16)
    block = np.zeros((2, 4), np.float32)
    frames = np.zeros((4, 2), np.float32)
    for x, frame_major in ((block, False), (frames, True), (block[:, ::2], False), (frames[::2], True)):
        writer = ring.write_frames if frame_major else ring.write
        reader = ring.read_frames_into if frame_major else ring.read_into
        writer(x)
        reader(x)
