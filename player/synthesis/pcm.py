"""LINEAR16 byte stream to float frames, tolerant of chunks that split a sample."""

from __future__ import annotations

import numpy as np

from player.audio.ring import Frames

_SCALE = np.float32(1.0 / 32768.0)


class Linear16Decoder:
    """Turns arbitrary byte chunks of 16-bit little-endian PCM into float32 frames.

    SpeechKit promises nothing about chunk boundaries, so an odd trailing byte is carried
    into the next chunk instead of being dropped or misread.
    """

    def __init__(self) -> None:
        self._carry = b""

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of their sample (0 or 1)."""
        return len(self._carry)

    def decode(self, data: bytes) -> Frames:
        if self._carry:
            data = self._carry + data
        usable = len(data) & ~1
        self._carry = data[usable:]
        samples = np.frombuffer(data, dtype="<i2", count=usable // 2)
        return samples.astype(np.float32) * _SCALE
