"""Whether the output device is there: "ok", or "lost" and why, and what waits for it.

A sound server restarted or a USB speaker pulled out ends the PortAudio stream. The
stream's watcher (`player.audio.stream.OutputStream.watch`) notices, marks the device
lost here, and reopens it when it is back; utterances meanwhile wait for it here, each
for at most `[audio] device_wait_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.5, 5.0
"""Seconds between attempts to reopen a lost device: from the first, doubling to the
second. A device back within a second is found at once; one away for an hour costs one
PortAudio re-initialisation every few seconds."""
QUIET_S = 60.0
"""Seconds after a warning about the device during which a new loss is logged at debug
level only: a device that comes and goes must not flood the log."""


class DeviceState:
    """The device's state for `status`, and the wait for it to come back.

    Only the event loop calls it.
    """

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        """Seconds an utterance waits for a lost device."""
        self.reason = ""
        """Why it was lost; empty while it is there."""
        self.since = 0.0
        """time.monotonic() when it was lost."""
        self._back = asyncio.Event()
        self._back.set()
        self._warned = -QUIET_S

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
        level = logging.WARNING if self.since - self._warned >= QUIET_S else logging.DEBUG
        if level == logging.WARNING:
            self._warned = self.since
        _LOGGER.log(level, "audio device lost: %s; reopening it once it is back", reason)
        return True

    def regain(self) -> None:
        if not self.reason:
            return
        _LOGGER.info("audio device back after %.1f s", time.monotonic() - self.since)
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


def backoff(first: float = BACKOFF_MIN, most: float = BACKOFF_MAX) -> Iterator[float]:
    """Delays between reopening attempts, without end: ``first`` doubling up to ``most``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


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
