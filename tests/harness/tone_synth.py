"""The pure parts of the tone server: a phase-continuous sine, chunk cutting, send pacing.

Nothing here touches gRPC or the event loop, so each piece can be reasoned about (and
reused by a benchmark) on its own.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import numpy as np

BYTES_PER_SAMPLE = 2
"""LINEAR16: one mono sample is two bytes, little-endian."""

_FULL_SCALE = 32767.0


def piece_samples(chars: int, ms_per_char: float, rate: int) -> int:
    """Samples of audio the server produces for a text piece of `chars` characters."""
    return round(chars * ms_per_char * rate / 1000.0)


def byte_offset_ms(offset: int, rate: int) -> int:
    """Audio time in whole milliseconds at byte `offset` of a LINEAR16 mono stream."""
    return (offset // BYTES_PER_SAMPLE) * 1000 // rate


class ToneGenerator:
    """A sine whose sample index runs on across calls to `take`, so consecutive pieces join
    into one unbroken tone: sample n is always amplitude * sin(2 pi f n / rate), whichever
    piece it falls in, and the concatenation equals one `take` of the summed length."""

    def __init__(self, frequency_hz: float, amplitude: float, rate: int) -> None:
        self._step = 2.0 * math.pi * frequency_hz / rate
        self._scale = amplitude * _FULL_SCALE
        self._next = 0

    @property
    def position(self) -> int:
        """Samples produced so far."""
        return self._next

    def take(self, count: int) -> bytes:
        """The next `count` samples as LINEAR16 little-endian bytes."""
        index = np.arange(self._next, self._next + count, dtype=np.float64)
        self._next += count
        wave = np.rint(np.sin(index * self._step) * self._scale)
        return np.clip(wave, -32768, 32767).astype("<i2").tobytes()


class Chunker:
    """Cuts byte strings into chunks whose sizes are taken in turn from `sizes`.

    The turn carries on from one `split` to the next; the last chunk of a split is whatever
    is left. Sizes ignore sample boundaries on purpose: SpeechKit promises nothing about them.
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        if not sizes or any(size <= 0 for size in sizes):
            raise ValueError(f"chunk sizes must be positive, got {tuple(sizes)!r}")
        self._sizes = itertools.cycle(tuple(sizes))

    def split(self, data: bytes) -> list[bytes]:
        chunks: list[bytes] = []
        pos = 0
        while pos < len(data):
            size = next(self._sizes)
            chunks.append(data[pos : pos + size])
            pos += size
        return chunks


class Pacer:
    """Decides when each chunk may be sent (monotonic seconds).

    The clock starts `first_chunk_delay` after the first text arrived (the origin). With a
    realtime factor r > 0 the chunk that ends at audio time T is due at origin + T / r; with
    r = 0 every chunk is due at the origin. Jitter moves each due time by a uniform +/- offset
    from a seeded RNG, but no chunk is due before the origin or before the previous chunk.

    A piece that arrives after the audio before it was already due (the client kept the
    synthesizer waiting) moves the origin later, so its chunks are paced from its arrival
    instead of going out in one burst: due times only ever move later than origin + T / r.

    Bursty patterns a real service shows, each off by default and drawn from the same RNG:

    - `drift` > 0: each chunk is late by a random walk, lateness = |previous lateness +
      uniform(-drift, +drift)| (reflected at 0, so the schedule wanders late and comes back
      without ever running early); chunks whose lateness shrinks go out at once, back on the
      schedule.
    - `per_piece_delay`: every piece after the first waits `first_chunk_delay` again, counted
      from when the audio before it was due (or from its arrival, if later), as a service
      does that synthesizes sentence by sentence. Unlike the other patterns this one shifts
      the rest of the call later: each piece adds one delay.
    - `piece_pause_s` (low, high): every piece after the first waits a uniform draw from
      this range, counted like `per_piece_delay`'s wait: a service that pauses briefly
      before each sentence, far less than its first-chunk delay. It too shifts the rest
      of the call later. With `jitter` (independent early and late offsets per chunk) and
      a `Chunker` cycle of sizes two to three times apart, it is a new user's bursty server.
    - `stall_at_s`: the first chunk that ends past this audio time (s into the call) goes out
      `stall_for_s` after it was due (once); the chunks that fell due meanwhile follow at
      once, so the call is back on its schedule after a burst.
    """

    def __init__(
        self,
        first_chunk_delay: float,
        realtime_factor: float,
        jitter: float,
        rng: random.Random,
        *,
        drift: float = 0.0,
        per_piece_delay: bool = False,
        stall_at_s: float | None = None,
        stall_for_s: float = 0.3,
        piece_pause_s: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if drift < 0 or stall_for_s < 0:
            raise ValueError(f"drift and stall_for_s must be >= 0, got {drift}, {stall_for_s}")
        if not 0 <= piece_pause_s[0] <= piece_pause_s[1]:
            raise ValueError(f"piece_pause_s must be 0 <= low <= high, got {piece_pause_s}")
        self._first_chunk_delay = first_chunk_delay
        self._factor = realtime_factor
        self._jitter = jitter
        self._rng = rng
        self._drift = drift
        self._per_piece_delay = per_piece_delay
        self._stall_at = stall_at_s
        self._stall_for = stall_for_s
        self._piece_pause = piece_pause_s
        self._origin: float | None = None
        self._previous = -math.inf
        self._lateness = 0.0

    def piece_arrived(self, arrived_at: float, audio_start: float) -> None:
        """A text piece whose audio starts at `audio_start` (s) arrived at `arrived_at`."""
        if self._origin is None:
            self._origin = arrived_at + self._first_chunk_delay
            return
        pauses = self._piece_pause[1] > 0
        if self._factor > 0:
            self._origin = max(self._origin, arrived_at - audio_start / self._factor)
        elif self._per_piece_delay or pauses:
            self._origin = max(self._origin, arrived_at)
        if self._per_piece_delay:
            self._origin += self._first_chunk_delay
        if pauses:
            # Drawn only when on, so a script without pauses keeps its seed's draws.
            self._origin += self._rng.uniform(*self._piece_pause)

    def due(self, audio_end: float) -> float:
        """When the chunk ending at audio time `audio_end` (s) may be sent."""
        if self._origin is None:
            raise RuntimeError("due() called before any piece arrived")
        at = self._origin + (audio_end / self._factor if self._factor > 0 else 0.0)
        # Draw only for the patterns that are on, so a script without drift gets the very
        # jitter it always got from its seed.
        if self._drift > 0:
            self._lateness = abs(self._lateness + self._rng.uniform(-self._drift, self._drift))
            at += self._lateness
        if self._jitter > 0:
            at += self._rng.uniform(-self._jitter, self._jitter)
        at = max(at, self._origin, self._previous)
        if self._stall_at is not None and audio_end > self._stall_at:
            self._stall_at = None
            at += self._stall_for
        self._previous = at
        return at
