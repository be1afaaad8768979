"""End to end: `player.SyncClient`, the blocking client, against a real daemon."""

from __future__ import annotations

import asyncio

import pytest

from player import Client, SyncClient
from player.control.client import Speech
from player.errors import ClientError
from tests.e2e.common import KEY, TIMEOUT
from tests.harness.daemon import Daemon
from tests.harness.tone_server import ToneScript


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, realtime_factor=4.0)


def use_sync_client(daemon: Daemon) -> list[str]:
    """What a program without asyncio does; returns the event kinds it saw."""
    with SyncClient(daemon.socket) as client:
        events = client.events()
        first = client.say("Hello there.", wait=True)
        kinds = []
        for event in events:
            if event.utterance_id == first:
                kinds.append(event.kind)
                if event.kind == "finished":
                    break
        with client.speech(priority="text") as speech:
            speech.feed("Streamed ")
            speech.feed("text that runs on and on and on.")
            second = speech.id()
        assert client.cancel(second)
        assert not client.cancel(second)  # gone already
        with pytest.raises(ClientError, match="unknown priority"):
            client.say("Hi.", priority="urgent")
        events.close()
    return kinds


async def test_the_blocking_client_speaks_streams_listens_and_cancels(daemon: Daemon) -> None:
    kinds = await asyncio.wait_for(asyncio.to_thread(use_sync_client, daemon), TIMEOUT)
    assert kinds[0] == "queued"
    assert kinds[1] == "started"
    assert kinds[-1] == "finished"


async def test_a_stream_the_daemon_ends_leaves_no_task_behind(daemon: Daemon) -> None:
    """grpc's task that reads a `speech()`'s text is not cancelled when the daemon ends
    the call (a stop): the client must end it, or it lingers until the program exits."""
    async with Client(daemon.socket) as client:
        # Kept, as a program may keep it: a task left waiting on it would stay pending.
        speech = client.speech()
        with pytest.raises(ClientError):
            await feed_until_stopped(client, speech)
        readers = [
            t for t in asyncio.all_tasks() if "_consume_request_iterator" in repr(t.get_coro())
        ]
        if readers:
            await asyncio.wait(readers, timeout=TIMEOUT)
        assert all(t.done() for t in readers)


async def feed_until_stopped(client: Client, speech: Speech) -> None:
    """Streams text until the daemon ends the utterance (a stop from the same client)."""
    async with speech:
        await speech.feed("Streamed text that runs on ")
        await speech.id()
        await client.stop()
        async with asyncio.timeout(TIMEOUT):
            while True:
                await speech.feed("and on ")
                await asyncio.sleep(0.01)  # a token's pace
