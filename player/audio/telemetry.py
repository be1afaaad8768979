"""What the output path records about itself, for `status` and the benchmark.

The callback writes one row per call into preallocated arrays (no allocation, no lock);
the producer writes one row per audio chunk. Everything is worked out later, on request,
by matching the two: the callback that read a chunk's first frame is the one whose read
range holds that frame's ring position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECENT_CALLBACKS = 8192
"""Callback rows kept (80 s of 10 ms blocks)."""
RECENT_CHUNKS = 4096
"""Chunk rows kept (about half a minute of cloud speech)."""


@dataclass(frozen=True)
class CallbackTiming:
    calls: int
    """Callbacks since start."""
    median_us: float
    """Median run time of one call over the recent ones, microseconds."""
    p99_us: float
    max_us: float


@dataclass(frozen=True)
class ChunkLatency:
    chunks: int
    """Recent chunks whose first frame the callback has read."""
    median_ms: float
    """Median time from a chunk's arrival to the callback reading its first frame, less
    the audio that was queued ahead of it (which had to play first), milliseconds."""
    p95_ms: float
    max_ms: float


class Telemetry:
    """Rows from the callback (one writer: the PortAudio thread) and from the producer
    (one writer: the asyncio thread); read by the asyncio thread."""

    def __init__(self) -> None:
        self.calls = 0
        self._cb_start_ns = np.zeros(RECENT_CALLBACKS, dtype=np.int64)
        self._cb_run_ns = np.zeros(RECENT_CALLBACKS, dtype=np.int64)
        self._cb_read_from = np.zeros(RECENT_CALLBACKS, dtype=np.int64)
        self._cb_read = np.zeros(RECENT_CALLBACKS, dtype=np.int64)
        self.chunks = 0
        self._chunk_arrival_ns = np.zeros(RECENT_CHUNKS, dtype=np.int64)
        self._chunk_at = np.zeros(RECENT_CHUNKS, dtype=np.int64)
        self._chunk_ahead = np.zeros(RECENT_CHUNKS, dtype=np.int64)

    def callback(self, started_ns: int, ended_ns: int, read_from: int, read: int) -> None:
        """Callback only: it started at ``started_ns`` (perf_counter_ns) and read ``read``
        frames from ring position ``read_from``."""
        i = self.calls % RECENT_CALLBACKS
        self._cb_start_ns[i] = started_ns
        self._cb_run_ns[i] = ended_ns - started_ns
        self._cb_read_from[i] = read_from
        self._cb_read[i] = read
        self.calls += 1

    def chunk(self, arrival_ns: int, position: int, ahead: int) -> None:
        """Producer only: a chunk arrived at ``arrival_ns`` and goes to ring ``position``
        with ``ahead`` frames still unplayed before it."""
        i = self.chunks % RECENT_CHUNKS
        self._chunk_arrival_ns[i] = arrival_ns
        self._chunk_at[i] = position
        self._chunk_ahead[i] = ahead
        self.chunks += 1

    def callback_timing(self) -> CallbackTiming:
        calls = self.calls
        recent = self._cb_run_ns[: min(calls, RECENT_CALLBACKS)].copy()
        if not len(recent):
            return CallbackTiming(calls, 0.0, 0.0, 0.0)
        p50, p99 = np.percentile(recent, [50, 99]) / 1000
        return CallbackTiming(calls, float(p50), float(p99), float(recent.max()) / 1000)

    def chunk_latency(self, samplerate: int) -> ChunkLatency:
        calls, chunks = self.calls, self.chunks
        # Oldest first. A row being written right now may be half done: drop the newest.
        cb = _ordered(calls, RECENT_CALLBACKS)[:-1]
        ch = _ordered(chunks, RECENT_CHUNKS)
        if not len(cb) or not len(ch):
            return ChunkLatency(0, 0.0, 0.0, 0.0)
        start, read_from = self._cb_start_ns[cb], self._cb_read_from[cb]
        read_to = read_from + self._cb_read[cb]
        at = self._chunk_at[ch]
        # The call that read position p: the last one that began reading at or before p
        # (read positions only grow), provided its range reaches p. Chunks dropped by a
        # stop, or not played yet, have none.
        k = np.searchsorted(read_from, at, side="right") - 1
        valid = k >= 0
        valid[valid] = at[valid] < read_to[k[valid]]
        if not valid.any():
            return ChunkLatency(0, 0.0, 0.0, 0.0)
        waited_ns = start[k[valid]] - self._chunk_arrival_ns[ch][valid]
        queued_ns = self._chunk_ahead[ch][valid] * 1_000_000_000 // samplerate
        added_ms = (waited_ns - queued_ns) / 1e6
        p50, p95 = np.percentile(added_ms, [50, 95])
        return ChunkLatency(int(valid.sum()), float(p50), float(p95), float(added_ms.max()))


def _ordered(count: int, size: int) -> np.ndarray[tuple[int], np.dtype[np.intp]]:
    """Indices of a ring of ``size`` rows holding ``count`` writes, oldest first."""
    if count <= size:
        return np.arange(count)
    return (np.arange(count - size, count) % size).astype(np.intp)
