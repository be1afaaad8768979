"""The link against a broker that accepts connections and never answers: each attempt
gives up within its timeout, closes its socket, and only the first is logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from player.config import MqttSettings
from player.fleet.link import Link
from player.fleet.topics import Topics

TIMEOUT = 20.0
ATTEMPTS = 3


class SilentBroker:
    """Accepts TCP connections and reads what comes, answering nothing."""

    def __init__(self) -> None:
        self.accepted = 0
        self.closed_by_client = 0
        self._changed = asyncio.Condition()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._changed:
            self.accepted += 1
            self._changed.notify_all()
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        async with self._changed:
            self.closed_by_client += 1
            self._changed.notify_all()
        writer.close()

    async def until_all_closed(self) -> None:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: self.closed_by_client >= self.accepted)

    async def until(self, accepted: int, closed: int) -> None:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(
                lambda: self.accepted >= accepted and self.closed_by_client >= closed
            )


async def test_a_silent_broker_costs_no_socket_per_attempt_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent = SilentBroker()
    server = await asyncio.start_server(silent.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = MqttSettings(broker=f"127.0.0.1:{port}", client_id="k1")

    async def ignore(topic: str, payload: bytes) -> None:
        raise AssertionError("no message can come")

    link = Link(settings, Topics.of(settings), ignore, lambda: None, timeout=0.3)
    with caplog.at_level(logging.DEBUG, "player.fleet"):
        async with server, asyncio.TaskGroup() as group:
            task = group.create_task(link.run())
            # Every attempt but the one under way was given up and its socket closed.
            await silent.until(accepted=ATTEMPTS, closed=ATTEMPTS - 1)
            assert not link.connected
            task.cancel()
        # Every socket is closed, the one a connect under way when cancelled opens too
        # (aiomqtt connects on a worker thread, which the cancel does not stop).
        await silent.until_all_closed()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"cannot reach MQTT broker 127.0.0.1:{port} (")
