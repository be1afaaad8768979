"""End to end: the daemon under a $NOTIFY_SOCKET listener, as systemd runs a Type=notify
unit with WatchdogSec=: READY=1 once the control socket answers, STATUS lines as the
daemon's state changes, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM; and
no WATCHDOG=1 while the audio side is wedged (the sound server hangs under a running
stream)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from player.audio.recovery import LIMITS
from player.daemon import WEDGED_S
from tests.e2e.common import KEY, TIMEOUT
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, write_config
from tests.harness.pulse import PulseServer
from tests.harness.tone_server import ToneServer

WATCHDOG_USEC = 1_000_000
"""What the test asks for (systemd's WatchdogSec=1): a ping every 0.5 s."""
PING_S = WATCHDOG_USEC / 1e6 / 2
LONG = "Once upon a time there was a speaker whose sound server hung halfway. " * 3
"""About 8 s of tone at the tone server's 40 ms per character."""

Message = dict[str, str]


class NotifyListener:
    """Systemd's side: a datagram socket in the abstract namespace; every message kept."""

    def __init__(self) -> None:
        self.name = f"speechkit-player-e2e-{uuid.uuid4().hex}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.name)
        self._sock.setblocking(False)
        self.seen: list[Message] = []

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": "@" + self.name, "WATCHDOG_USEC": str(WATCHDOG_USEC)}

    async def next(self, within: float = TIMEOUT) -> Message:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self._sock, 4096), within)
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.seen.append(message)
        return message

    async def until(self, wanted: Callable[[Message], bool], within: float = TIMEOUT) -> Message:
        async with asyncio.timeout(within):
            while not wanted(message := await self.next()):
                pass
            return message

    async def quiet_watchdog(self, within: float) -> None:
        """Returns once no WATCHDOG=1 has come for two intervals, looking for `within` s."""
        async with asyncio.timeout(within):
            while True:
                try:
                    while "WATCHDOG" not in await self.next(2 * PING_S):
                        pass
                except TimeoutError:
                    return

    def close(self) -> None:
        self._sock.close()


def status(text: str) -> Callable[[Message], bool]:
    return lambda message: message.get("STATUS") == text


def watchdog(message: Message) -> bool:
    return message.get("WATCHDOG") == "1"


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    notify = NotifyListener()
    yield notify
    notify.close()


async def say(daemon: Daemon, text: str) -> str:
    result = await run_cli(daemon.config, daemon.env, "say", text)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_ready_status_watchdog_and_stopping(
    pulse: PulseServer, tone_server: ToneServer, listener: NotifyListener, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tone_server.address, api_key=KEY)
    daemon = Daemon(config, {**clean_env(pulse.env), **listener.env})
    starting = asyncio.create_task(daemon.start())
    try:
        ready = await listener.until(lambda m: "READY" in m)
        # Asked once, right then: a client started on READY=1 is served at once.
        result = await run_cli(daemon.config, daemon.env, "status")
        assert result.returncode == 0, result.stderr
        assert ready == {"READY": "1", "STATUS": "idle"}, listener.seen
        await starting
        for _ in range(3):
            await listener.until(watchdog, within=2 * PING_S + 1)
        assert [m for m in listener.seen if "STATUS" in m] == [ready], "idle again"

        utterance = await say(daemon, "A short announcement for the status line.")
        await listener.until(status(f"speaking {utterance}"))
        await listener.until(status("idle"))
        await listener.until(watchdog, within=2 * PING_S + 1)

        assert await daemon.stop() == 0, daemon.log
        stopping = await listener.until(lambda m: "STOPPING" in m)
        assert stopping == {"STOPPING": "1", "STATUS": "stopping"}
        assert "Traceback" not in daemon.log, daemon.log
        assert not daemon.socket.exists()
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await daemon.stop()


async def test_a_wedged_audio_side_starves_the_watchdog(
    own_pulse: PulseServer,
    own_daemons: Daemons,
    tone_server: ToneServer,
    listener: NotifyListener,
) -> None:
    daemon = await own_daemons.start_with_env(listener.env, tone_server.address, KEY)
    await listener.until(lambda m: "READY" in m)
    utterance = await say(daemon, LONG)
    await listener.until(status(f"speaking {utterance}"))
    await listener.until(watchdog, within=2 * PING_S + 1)

    own_pulse.freeze()
    try:
        # The callbacks stop at once, and the watcher gives the device up once its stream
        # has had its start-up bound and a silence over the limit, and tries to reopen
        # it, which hangs in PortAudio too; the pings stop once the audio side has not
        # answered for WEDGED_S.
        await listener.quiet_watchdog(within=LIMITS.start_s + WEDGED_S + 10 * PING_S)
    finally:
        own_pulse.thaw()
    # Once the sound server answers again, so does the audio side, and the pings resume.
    await listener.until(watchdog)
    assert daemon.alive, daemon.log
