"""A local TCP proxy that can break its connections the way a network does: a reset
(RST) after a number of bytes from the server, on one connection or all.

Put it between a daemon and the tone server to see what a dropped connection looks like
through grpc, which no server-side abort can show.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass


@dataclass
class ResetPlan:
    """Which connection to reset, and when."""

    connection: int = 0
    """0-based, in the order clients connected."""
    after_bytes: int = 0
    """Bytes forwarded from the server on that connection before it is reset."""


class TcpProxy:
    """Listens on a free local port and forwards each connection to `target` (host:port)."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        """Connections accepted so far."""
        self.resets = 0
        """Connections reset by the plan."""
        self.plan: ResetPlan | None = None
        self.address = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        """Stop listening and drop every connection (each handler then ends by itself)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(client_w)
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        plan = self.plan if self.plan is not None and self.plan.connection == index else None
        limit = plan.after_bytes if plan is not None else None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(client_r, server_w, None))
                group.create_task(_pipe(server_r, client_w, limit))
        except* _Reset:
            self.resets += 1
            _reset(client_w)
            _reset(server_w)
        except* OSError:  # either side went away (ConnectionError included)
            _reset(client_w)
            _reset(server_w)
        finally:
            self._writers.difference_update((client_w, server_w))


class _Reset(Exception):
    """The plan's byte count was reached."""


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
) -> None:
    sent = 0
    while data := await reader.read(65536):
        if limit is not None and sent + len(data) >= limit:
            writer.write(data[: limit - sent])
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            raise _Reset
        writer.write(data)
        await writer.drain()
        sent += len(data)
    with contextlib.suppress(OSError):
        writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN, as a broken network path or a restarted peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
