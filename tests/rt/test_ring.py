"""RingBuffer: reference-queue properties, a two-thread stress, no allocation in steady state."""
from __future__ import annotations

import collections
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt.ring import RingBuffer, warmup

operations = st.lists(st.tuples(st.sampled_from(["write", "write_frames", "read", "read_frames", "clear"]),
                                st.integers(0, 40)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 33), channels=st.integers(1, 3), ops=operations)
def test_matches_a_reference_queue(capacity, channels, ops):
    ring = RingBuffer(channels, capacity)
    reference: collections.deque = collections.deque()
    overflows = underflows = 0
    counter = 0
    for op, n in ops:
        if op.startswith("write"):
            block = (np.arange(counter, counter + n, dtype=np.float32)[None, :]
                     * np.array([[1], [-1], [2]][:channels], np.float32))
            counter += n
            written = ring.write(block) if op == "write" else ring.write_frames(np.ascontiguousarray(block.T))
            fits = min(n, capacity - len(reference))
            assert written == fits
            reference.extend(block[:, :fits].T.tolist())
            overflows += n - fits
        elif op.startswith("read"):
            out = np.full((channels, n), 7.0, np.float32)
            if op == "read":
                got = ring.read_into(out)
            else:
                frames = np.full((n, channels), 7.0, np.float32)
                got = ring.read_frames_into(frames)
                out = frames.T
            expected = [reference.popleft() for _ in range(min(n, len(reference)))]
            assert got == len(expected)
            if expected:
                np.testing.assert_array_equal(out[:, :got], np.array(expected, np.float32).T)
            assert not out[:, got:].any()  # the missing part is silence
            underflows += n - got
        else:
            ring.clear()
            reference.clear()
        assert ring.available == len(reference)
        assert ring.space == capacity - len(reference)
        assert ring.overflows == overflows and ring.underflows == underflows


def test_two_threads_pass_ten_million_samples_without_loss_or_duplication():
    total = 10_000_000
    sequence = np.arange(total, dtype=np.float32)[None, :]  # float32 is exact for integers < 2**24
    received = np.full((1, total), -1.0, np.float32)
    ring = RingBuffer(1, 16384)
    warmup()

    def produce() -> None:
        rng = np.random.default_rng(1)
        pos = 0
        while pos < total:
            n = min(int(rng.integers(1, 3000)), total - pos, ring.space)
            pos += ring.write(sequence[:, pos:pos + n])
            if n == 0:
                time.sleep(0)  # full: hand the GIL to the consumer instead of spinning

    def consume() -> None:
        rng = np.random.default_rng(2)
        pos = 0
        while pos < total:
            n = min(int(rng.integers(1, 3000)), total - pos, ring.available)
            pos += ring.read_into(received[:, pos:pos + n])
            if n == 0:
                time.sleep(0)  # empty: hand the GIL to the producer

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    np.testing.assert_array_equal(received, sequence)
    assert ring.overflows == 0 and ring.underflows == 0
    assert ring.total_written == ring.total_read == total


def test_steady_state_allocates_nothing():
    warmup()
    block_samples = 4096
    ring = RingBuffer(2, 3 * block_samples)
    x = np.ones((2, block_samples), np.float32)
    out = np.empty((block_samples, 2), np.float32)
    for _ in range(10):  # first calls may fill numba's dispatch caches
        ring.write(x)
        ring.read_frames_into(out)
    tracemalloc.start()
    try:
        start_bytes, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            ring.write(x)
            ring.read_frames_into(out)
            ring.read_frames_into(out)  # underflow path too
        end_bytes, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    block_bytes = x.nbytes
    assert end_bytes - start_bytes < 1024, "the ring's steady state keeps allocating"
    assert peak_bytes - start_bytes < block_bytes // 8, "a call allocated a block-sized temporary"
    assert ring.underflows == 2000 * block_samples


def test_wrong_blocks_are_refused_with_a_clear_message():
    ring = RingBuffer(2, 8)
    with pytest.raises(ValueError, match="float32 blocks of 2 channel"):
        ring.write(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="float32 blocks of 2 channel"):
        ring.read_into(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="capacity >= 1"):
        RingBuffer(1, 0)
