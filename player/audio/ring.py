"""A preallocated single-producer, single-consumer ring of mono float32 frames.

Threads: exactly one writer (the asyncio side: :meth:`write`) and one reader (the
PortAudio callback thread: :meth:`read_into` and :meth:`discard`). Each side only ever
advances its own position counter, and both counters only grow, so a stale read of the
other side's counter errs on the safe side (less data, or less room, than there really
is). Neither side takes a lock or allocates an array.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]


class RingBuffer:
    """Fixed capacity ring; positions are absolute frame counts since creation."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf: Frames = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self._write_pos = 0
        self._read_pos = 0

    @property
    def write_pos(self) -> int:
        """Frames ever written."""
        return self._write_pos

    @property
    def read_pos(self) -> int:
        """Frames ever consumed (read or discarded)."""
        return self._read_pos

    def available(self) -> int:
        """Frames written but not yet consumed."""
        return self._write_pos - self._read_pos

    def free(self) -> int:
        """Frames that can be written without overwriting unread ones."""
        return self.capacity - (self._write_pos - self._read_pos)

    def write(self, frames: Frames) -> int:
        """Writer only: copy as many of ``frames`` as fit; returns how many were taken."""
        n = min(len(frames), self.free())
        if n <= 0:
            return 0
        start = self._write_pos % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = frames[:first]
        if n > first:
            self._buf[: n - first] = frames[first:n]
        # Publish only after the copy: the reader must never see frames not yet written.
        self._write_pos += n
        return n

    def read_into(self, out: npt.NDArray[np.float32], frames: int) -> int:
        """Reader only: copy up to ``frames`` into ``out[:n]`` (any channel count; mono is
        spread across channels by broadcasting) and return ``n``. ``out[n:]`` is untouched."""
        n = self.peek_into(out, frames)
        self._read_pos += n
        return n

    def peek_into(self, out: npt.NDArray[np.float32], frames: int) -> int:
        """Reader only: like :meth:`read_into`, but the frames stay unread (and so are
        never overwritten meanwhile)."""
        n = min(frames, self._write_pos - self._read_pos)
        if n <= 0:
            return 0
        start = self._read_pos % self.capacity
        first = min(n, self.capacity - start)
        if out.ndim == 2:
            out[:first] = self._buf[start : start + first, np.newaxis]
            if n > first:
                out[first:n] = self._buf[: n - first, np.newaxis]
        else:
            out[:first] = self._buf[start : start + first]
            if n > first:
                out[first:n] = self._buf[: n - first]
        return n

    def skip_to(self, position: int) -> None:
        """Reader only: drop unread frames up to ``position`` (at most all written)."""
        self._read_pos = max(self._read_pos, min(position, self._write_pos))

    def rewind_to(self, position: int) -> bool:
        """Reader only, while no other reader runs: make the frames read since
        ``position`` readable again. False (and nothing changed) if the writer may have
        written over them since."""
        if not self._read_pos - self.capacity < position <= self._read_pos:
            return False
        if self._write_pos - position > self.capacity:
            return False
        self._read_pos = position
        return True

    def discard(self) -> int:
        """Reader only: drop everything written so far; returns how many frames were dropped."""
        end = self._write_pos
        dropped = end - self._read_pos
        self._read_pos = end
        return dropped
