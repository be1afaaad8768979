"""The TCP proxy: forwards both ways, and resets the connection its plan names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.harness.tcp_proxy import ResetPlan, TcpProxy

TIMEOUT = 5.0
"""Seconds any single await here may take."""


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data * 10)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    """A server answering each read with ten copies of it."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def talk(address: str, message: bytes, want: int) -> tuple[bytes, Exception | None]:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
    got, error = b"", None
    try:
        writer.write(message)
        while len(got) < want:
            data = await asyncio.wait_for(reader.read(1024), TIMEOUT)
            if not data:
                break
            got += data
    except ConnectionError as exc:
        error = exc
    finally:
        writer.close()
    return got, error


async def test_forwards_both_ways(echo: str) -> None:
    async with TcpProxy(echo) as proxy:
        got, error = await talk(proxy.address, b"abc", 30)
    assert (got, error) == (b"abc" * 10, None)
    assert (proxy.connections, proxy.resets) == (1, 0)


async def test_resets_the_planned_connection_after_its_bytes(echo: str) -> None:
    async with TcpProxy(echo) as proxy:
        proxy.plan = ResetPlan(connection=1, after_bytes=12)
        first, _ = await talk(proxy.address, b"abc", 30)
        second, error = await talk(proxy.address, b"abc", 30)
    assert first == b"abc" * 10
    assert (b"abc" * 10)[:12].startswith(second)  # a reset may discard what was in flight
    assert isinstance(error, ConnectionResetError)
    assert proxy.resets == 1
