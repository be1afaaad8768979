"""systemd's notify protocol (sd_notify(3)): readiness, status lines and the watchdog.

Datagrams of `KEY=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or
an abstract name written with a leading "@". A short, stable protocol: written here
rather than taking a dependency for it. With no $NOTIFY_SOCKET nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

_LOGGER = logging.getLogger(__name__)

STATUS_POLL_S = 1.0
"""Seconds between looks at the daemon's state for a new STATUS line."""
_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str) -> str | None:
    """The address to send to for a $NOTIFY_SOCKET value; None for a form we do not speak
    (systemd also knows "vsock:", which a user daemon never gets)."""
    if value.startswith("@"):
        # Linux's abstract namespace: a leading NUL instead of the "@".
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(usec: str | None, pid: str | None, our_pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises), or None when no watchdog is asked of this process."""
    if not usec:
        return None
    if pid and pid.strip() != str(our_pid):
        return None  # meant for another process (we were forked or exec'd by it)
    try:
        micros = int(usec)
    except ValueError:
        _LOGGER.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", usec)
        return None
    if micros <= 0:
        return None
    return micros / 1e6 / 2


class Notifier:
    """Sends notify messages; every method is a no-op when systemd did not ask for them.

    A socket that refuses a message never stops the daemon: the first failure is logged,
    later ones only at debug level, and each message is still tried.
    """

    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self.address = address
        """Where datagrams go (abstract names start with NUL); None sends nothing."""
        self.watchdog_s = watchdog_s if address is not None else None
        """Seconds between WATCHDOG=1 pings; None for no watchdog."""
        self._socket: socket.socket | None = None
        self._warned = False
        self._stopping = False
        self._status = ""

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Reads and removes $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, so that no
        child of ours (the local synthesizer) can notify systemd in our name."""
        env = os.environ if environ is None else environ
        value, usec, pid = (env.pop(name, None) for name in _VARIABLES)
        if not value:
            return cls(None)
        address = socket_address(value)
        if address is None:
            _LOGGER.warning("ignoring NOTIFY_SOCKET=%r: not a path or an @abstract name", value)
            return cls(None)
        return cls(address, watchdog_interval(usec, pid, os.getpid()))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        """One datagram of `KEY=value` lines."""
        if self.address is None:
            return
        message = "\n".join(lines).encode()
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)  # a full queue must not stall the event loop
                self._socket = sock
            self._socket.sendto(message, self.address)
        except OSError as err:
            level = logging.DEBUG if self._warned else logging.WARNING
            _LOGGER.log(level, "cannot notify systemd at NOTIFY_SOCKET: %s", err)
            self._warned = True

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", status_line(status))

    def status(self, status: str) -> None:
        """Sent only when it changes; "stopping" stays until the end."""
        if not self._stopping and status != self._status:
            self._status = status
            self.send(status_line(status))

    def stopping(self) -> None:
        """Once, however many ways of ending say so."""
        if not self._stopping:
            self._stopping = True
            self.send("STOPPING=1", status_line("stopping"))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def keep_alive(self, status: Callable[[], str], alive: Callable[[], bool]) -> None:
        """For the daemon's life: send `status()` when it changes, and WATCHDOG=1 every
        `watchdog_s` while `alive()`. That this loop runs at all shows the event loop
        turns; `alive` vouches for the rest (the audio thread)."""
        if self.address is None:
            return
        tick = STATUS_POLL_S if self.watchdog_s is None else min(STATUS_POLL_S, self.watchdog_s)
        next_ping = time.monotonic()
        while True:
            self.status(status())
            now = time.monotonic()
            if self.watchdog_s is not None and now >= next_ping and alive():
                self.watchdog()
                next_ping = now + self.watchdog_s
            await asyncio.sleep(tick)


def status_line(text: str) -> str:
    """STATUS= takes one line."""
    return "STATUS=" + " ".join(text.split())
