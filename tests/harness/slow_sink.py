"""A sound server that is slow to start every new playback stream, as a sink waking from
suspend is (HDMI, USB, Bluetooth) or a sound server under load.

`SlowToStart` watches a `PulseServer` with ``pactl subscribe`` and, whenever a new client's
first sink input (a playback stream) appears, freezes the server (SIGSTOP) for `freeze_s`
seconds, then lets it go on (SIGCONT). The client's stream exists, but its callbacks come
late: a few at first, while the client's own buffer fills, then none until the server thaws.

Only a new client's stream wakes the sink. ALSA's pulse plugin also makes a new sink input
on the client it already has when a running stream recovers from an underrun (frequent on
a loaded machine): that stream plays on a sink that is awake, and freezing the server for
it would be a hang in the middle of speech, another fault than the one this models.
"""

from __future__ import annotations

import math
import re
import subprocess
import threading
import time
from types import TracebackType
from typing import Self

from tests.harness.pulse import PulseServer, end_process

_NEW_STREAM = re.compile(rb"Event 'new' on sink-input #(\d+)")
_AWAKE_S = 1.0
"""Seconds after a thaw during which the sink counts as awake: new streams then start at
once. ALSA's pulse plugin replaces a stream's sink input as it starts and as it recovers
from the underrun the freeze caused, and a sink that has just woken does not sleep again."""
_STOP_TIMEOUT = 5.0
"""Seconds ``pactl subscribe`` and the watching thread get to end."""


class SlowToStart:
    """Freezes `pulse` for `freeze_s` whenever a playback stream appears; a context manager.

    `frozen` counts the streams it held up; `wait_frozen` waits for the next one."""

    def __init__(self, pulse: PulseServer, freeze_s: float) -> None:
        self._pulse = pulse
        self._freeze_s = freeze_s
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self.frozen = 0
        self.history: list[str] = []
        """What it saw and did, for a failing test's message."""
        self._clients: set[str] = set()  # those whose stream has woken the sink already
        self._thawed_at = -math.inf
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            ["pactl", "subscribe"],
            env=self._pulse.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._watch, name="slow-to-start")
        self._thread.start()
        return self

    def _watch(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if self._stop.is_set():
                return
            if (found := _NEW_STREAM.search(line)) is None:
                continue
            stream = found.group(1).decode()
            client = self._client_of(stream)
            now = time.monotonic()
            if client is None or client in self._clients:
                self.history.append(f"{now:.2f} sink input #{stream}: client {client}, awake")
                continue
            self._clients.add(client)
            # The pulse plugin replaces a new stream's sink input as it starts: a stream
            # that appears just after a thaw plays on a sink that has just woken.
            if now - self._thawed_at < _AWAKE_S:
                self.history.append(f"{now:.2f} sink input #{stream}: client {client}, woken")
                continue
            self.history.append(f"{now:.2f} sink input #{stream}: client {client}, frozen")
            self._pulse.freeze()
            try:
                # Ends early only when the test is over: a frozen server cannot be stopped.
                self._stop.wait(self._freeze_s)
            finally:
                self._pulse.thaw()
            with self._cond:
                self._thawed_at = time.monotonic()
                self.frozen += 1
                self._cond.notify_all()

    def _client_of(self, stream: str) -> str | None:
        """The client owning sink input ``stream``; None if it is gone already."""
        listing = subprocess.run(
            ["pactl", "list", "short", "sink-inputs"],
            env=self._pulse.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_STOP_TIMEOUT,
            check=False,
        )
        for row in listing.stdout.decode(errors="replace").splitlines():
            fields = row.split("\t")
            if len(fields) > 2 and fields[0] == stream:
                return fields[2]
        return None

    def wait_asleep(self) -> None:
        """Until the sink is asleep again: the next stream to appear will be held up."""
        with self._cond:
            thawed_at = self._thawed_at
        time.sleep(max(0.0, thawed_at + _AWAKE_S - time.monotonic()))

    def wait_frozen(self, count: int, timeout: float) -> None:
        """Until `count` streams have been held up and let go; TimeoutError after `timeout`."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.frozen >= count, timeout):
                raise TimeoutError(f"{self.frozen} new stream(s) held up, not {count}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._pulse.thaw()
        if self._proc is not None:
            end_process(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
