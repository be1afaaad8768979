"""The output latency asked of the sound server: raised when the device keeps running
dry, lowered again after a quiet period.

A device that runs dry (PortAudio's output_underflow) was not given audio in time: the
system was too busy to run the callback within the latency the stream was opened with.
As PulseAudio does for its own clients, the stream is then reopened, at the next silence,
with twice the latency (bounded: a longer one delays `stop` by as much), and after a
quiet period with half again, down to PortAudio's "low" latency.

Pure arithmetic on numbers the caller passes in: no clock, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyPolicy:
    """When the latency moves (tests shorten the times)."""

    raise_after: int = 3
    """Device underruns within `window_s` that raise the latency."""
    window_s: float = 10.0
    """Seconds the underruns are counted over."""
    quiet_s: float = 300.0
    """Seconds without an underrun, and since the last change, before it is lowered."""
    most_s: float = 0.2
    """The highest latency asked for, in seconds: the sound server plays that much after
    a `stop` has faded the stream out."""


class OutputLatency:
    """The latency step the stream is to be opened with: 0 is PortAudio's "low" latency,
    each step above doubles what "low" was granted. Only the event loop calls it, but for
    `opened`, which the thread that opened the stream may call."""

    def __init__(self, policy: LatencyPolicy = LatencyPolicy()) -> None:
        self.policy = policy
        self.step = 0
        """The step streams are opened with now."""
        self.low_s = 0.0
        """Seconds the sound server granted for "low" (0 until a stream at step 0 opened)."""
        self._seen = 0
        self._dry: deque[float] = deque()
        self._due = False  # the device ran dry often enough: raise at the next silence
        self._last_dry = 0.0
        self._changed = 0.0

    def request(self) -> float | str:
        """What to open a stream with: "low", or seconds."""
        if self.step == 0 or self.low_s <= 0:
            return "low"
        return self.seconds(self.step)

    def seconds(self, step: int) -> float:
        return min(self.policy.most_s, self.low_s * (1 << step))

    def opened(self, granted_s: float, now: float) -> None:
        """A stream opened with `request()` got ``granted_s`` seconds of latency."""
        if self.step == 0:
            self.low_s = granted_s
        self._changed = max(self._changed, now)

    def observe(self, underruns: int, now: float) -> None:
        """The device's underrun count (it only grows) as seen at monotonic ``now``."""
        for _ in range(min(underruns - self._seen, self.policy.raise_after)):
            self._dry.append(now)
        if underruns != self._seen:
            self._last_dry = now
        self._seen = underruns
        while self._dry and now - self._dry[0] > self.policy.window_s:
            self._dry.popleft()
        # Kept until it is done: the silence it waits for may come long after the window.
        self._due = self._due or len(self._dry) >= self.policy.raise_after

    def wanted(self, now: float) -> int | None:
        """The step to reopen the stream at, or None to keep it."""
        policy = self.policy
        raisable = self.low_s > 0 and self.seconds(self.step) < policy.most_s
        if self._due and raisable:
            return self.step + 1
        quiet = now - max(self._last_dry, self._changed)
        if self.step > 0 and quiet >= policy.quiet_s:
            return self.step - 1
        return None

    def change(self, step: int, now: float) -> None:
        """The stream is to be reopened at ``step``."""
        self.step = step
        self._dry.clear()
        self._due = False
        self._changed = now
