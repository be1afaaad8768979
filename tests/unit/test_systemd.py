"""The notify protocol against a real AF_UNIX datagram socket the test binds, as systemd
does: addresses (a path, the abstract "@" form), the messages, the watchdog's interval,
and a socket that is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from player.systemd import Notifier, socket_address, watchdog_interval

TIMEOUT = 5.0


@dataclasses.dataclass
class FakeDaemon:
    """What keep_alive asks of the daemon, set by the test."""

    line: str = "idle"
    alive: bool = True


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A socket in the abstract namespace and its $NOTIFY_SOCKET spelling."""
    name = f"speechkit-player-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(TIMEOUT)
        yield sock, "@" + name


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_addresses() -> None:
    assert socket_address("/run/user/1000/systemd/notify") == "/run/user/1000/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify") == (
        "\0/org/freedesktop/systemd1/notify"
    )
    assert socket_address("vsock:2:1234") is None
    assert socket_address("relative/path") is None


def test_the_watchdog_interval_is_half_of_what_systemd_asks() -> None:
    assert watchdog_interval("30000000", None, 42) == 15.0
    assert watchdog_interval("30000000", "42", 42) == 15.0
    assert watchdog_interval("30000000", "43", 42) is None  # another process's
    assert watchdog_interval(None, None, 42) is None
    assert watchdog_interval("0", None, 42) is None
    assert watchdog_interval("soon", None, 42) is None


def test_messages_reach_an_abstract_socket(listener: tuple[socket.socket, str]) -> None:
    sock, value = listener
    env = {"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "2000000", "HOME": "/home/u"}
    notifier = Notifier.from_environment(env)
    # Read and removed, so a child of the daemon cannot notify in its name.
    assert env == {"HOME": "/home/u"}
    assert notifier.watchdog_s == 1.0
    try:
        notifier.ready("idle")
        assert received(sock) == ["READY=1", "STATUS=idle"]
        notifier.status("device lost: the sound\nserver went away")
        assert received(sock) == ["STATUS=device lost: the sound server went away"]
        notifier.watchdog()
        assert received(sock) == ["WATCHDOG=1"]
        notifier.stopping()
        notifier.stopping()
        notifier.status("idle")  # too late: "stopping" stays
        assert received(sock) == ["STOPPING=1", "STATUS=stopping"]
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    finally:
        notifier.close()


def test_messages_reach_a_path(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(TIMEOUT)
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(path)})
        try:
            assert notifier.watchdog_s is None
            notifier.status("speaking u12")
            assert received(sock) == ["STATUS=speaking u12"]
        finally:
            notifier.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_s is None
    notifier.ready("idle")  # nothing to send to, and no error


def test_a_socket_that_is_gone_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    try:
        for _ in range(3):
            notifier.status("idle")
            notifier.watchdog()
    finally:
        notifier.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, caplog.text
    assert "NOTIFY_SOCKET" in warnings[0].getMessage()


async def test_keep_alive_pings_only_while_alive_and_sends_changes_once(
    listener: tuple[socket.socket, str],
) -> None:
    sock, value = listener
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    notifier = Notifier.from_environment(
        {"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert notifier.watchdog_s == 0.05
    state = FakeDaemon()

    async def next_message(within: float = TIMEOUT) -> list[str]:
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), within)
        return data.decode().split("\n")

    async def until(wanted: list[str]) -> None:
        while await next_message() != wanted:
            pass

    async def quiet_for(seconds: float) -> None:
        """Returns once nothing has come for `seconds` (pings alone may come before)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                try:
                    message = await next_message(seconds)
                except TimeoutError:
                    return
                assert message == ["WATCHDOG=1"], message

    task = asyncio.create_task(notifier.keep_alive(lambda: state.line, lambda: state.alive))
    try:
        assert await next_message() == ["STATUS=idle"]
        assert await next_message() == ["WATCHDOG=1"]
        assert await next_message() == ["WATCHDOG=1"]  # idle is not sent again
        state.line = "speaking u1"
        await until(["STATUS=speaking u1"])
        state.alive = False
        # At most one ping already on its way; then none for six intervals.
        await quiet_for(0.3)
        state.alive = True
        await until(["WATCHDOG=1"])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        notifier.close()
