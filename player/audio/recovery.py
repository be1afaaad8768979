"""Whether the output device is there: "ok", or "lost" and why, and what waits for it;
and when a stream counts as lost at all.

A sound server restarted or a USB speaker pulled out ends the PortAudio stream. The
stream's watcher (`player.audio.stream.OutputStream.watch`) notices, marks the device
lost here, and reopens it when it is back; utterances meanwhile wait for it here, each
for at most `[audio] device_wait_s`.

Slow is not lost. A sink waking from suspend (HDMI, USB, Bluetooth) or a busy sound
server may take a second or more before a new stream's callbacks come at their steady
rate, so a stream is judged on its silence only once it has had `Limits.start_s` to get
going; a reopened one gets the same bound, and the device counts as back only once the
new stream has called back. Attempts back off, and keep backing off across a device that
comes back and goes again at once, so recovery can never turn into a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass

from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.5, 5.0
"""Seconds between attempts to reopen a lost device: the second attempt waits the first,
doubling up to the second. A device back within a second is found at once; one away for
an hour costs one PortAudio re-initialisation every few seconds."""
STABLE_S = 30.0
"""Seconds a device must have played since it came back before a new loss starts the
back-off over (with an attempt at once): one that keeps coming and going is retried ever
more slowly instead of in a loop."""
QUIET_S = 60.0
"""Seconds after a warning about the device during which a new loss is logged at debug
level only: a device that comes and goes must not flood the log."""


@dataclass(frozen=True)
class Limits:
    """When a stream counts as lost (tests shorten these)."""

    start_s: float = 5.0
    """Seconds a new stream has to get going: to make its first callback, and to settle
    to its steady rate after it. A sink resuming from suspend takes 1-2 s; a stream that
    has not called back by then is not coming."""
    silent_s: float = 1.0
    """Seconds a stream that has got going may go without a callback before it counts as
    lost: a sound server that hangs instead of dying leaves the stream "active" but silent."""
    check_s: float = 0.25
    """Seconds between the watcher's looks at the stream."""

    def silence(self, opened_at: float, last_callback: float, now: float) -> float:
        """Seconds of silence held against a stream opened at ``opened_at`` (monotonic):
        over `silent_s`, it is lost. Counted from its last callback, but never from before
        `start_s - silent_s` after it opened, so a stream gets `start_s` to start."""
        return now - max(last_callback, opened_at + self.start_s - self.silent_s)

    def lost_reason(self, opened_at: float, last_callback: float, now: float) -> str | None:
        """Why a running stream counts as lost, or None while it may still be coming."""
        if self.silence(opened_at, last_callback, now) <= self.silent_s:
            return None
        if last_callback < opened_at:
            return f"the audio device did not start within {self.start_s:g} s"
        silent = now - last_callback
        return f"the audio device stopped asking for audio ({silent:.1f} s without a call)"


LIMITS = Limits()
"""The limits the daemon runs with."""


class DeviceState:
    """The device's state for `status`, the wait for it to come back, and the back-off
    between attempts at reopening it.

    Only the event loop calls it.
    """

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        """Seconds an utterance waits for a lost device."""
        self.reason = ""
        """Why it was lost; empty while it is there."""
        self.since = 0.0
        """time.monotonic() when it was lost."""
        self.reopens = 0
        """Attempts at reopening it, since the daemon started (for status)."""
        self._back = asyncio.Event()
        self._back.set()
        self._warned = -QUIET_S
        self._regained_at = -math.inf
        self._delay = 0.0

    @property
    def state(self) -> str:
        """For status: see control.proto's Status.device_state."""
        return "lost" if self.reason else "ok"

    @property
    def lost(self) -> bool:
        return bool(self.reason)

    @property
    def failure(self) -> str:
        """One line for an utterance that cannot play because of it."""
        return f"the audio device was lost ({self.reason})" if self.reason else ""

    @property
    def worth_waiting(self) -> bool:
        """Lost for less than `wait_s`: audio already queued waits for it."""
        return self.lost and time.monotonic() - self.since < self.wait_s

    def lose(self, reason: str) -> bool:
        """Mark it lost; True if it was there until now (then it is logged, once)."""
        if self.reason:
            return False
        self.reason, self.since = reason, time.monotonic()
        self._back.clear()
        if self.since - self._regained_at >= STABLE_S:
            self._delay = 0.0
        level = logging.WARNING if self.since - self._warned >= QUIET_S else logging.DEBUG
        if level == logging.WARNING:
            self._warned = self.since
        _LOGGER.log(level, "audio device lost: %s; reopening it once it is back", reason)
        return True

    def next_attempt(self) -> float:
        """Seconds to wait before the next attempt at reopening; counts the attempt."""
        delay = self._delay
        self._delay = min(max(2 * self._delay, BACKOFF_MIN), BACKOFF_MAX)
        self.reopens += 1
        return delay

    def regain(self) -> None:
        if not self.reason:
            return
        self._regained_at = time.monotonic()
        _LOGGER.info("audio device back after %.1f s", self._regained_at - self.since)
        self.reason = ""
        self._back.set()

    async def wait(self) -> None:
        """Return once the device is there; OutputError with the reason after `wait_s`."""
        if not self.reason:
            return
        try:
            await asyncio.wait_for(self._back.wait(), self.wait_s)
        except TimeoutError:
            raise OutputError(f"{self.failure}; not back within {self.wait_s:g} s") from None


def reinitialise_portaudio() -> None:
    """Have PortAudio look for devices again: it lists them once, when initialised, so a
    sound server started again or a device plugged in later is otherwise not found. It
    closes every open stream, so only call it while ours is closed."""
    import sounddevice

    # sounddevice has no public call for this; these two are what its own
    # initialisation and atexit use.
    # A failed initialisation leaves it terminated: terminating again then fails, and
    # must not stop the next attempt from initialising.
    with contextlib.suppress(Exception):
        sounddevice._terminate()  # noqa: SLF001
    sounddevice._initialize()  # noqa: SLF001
