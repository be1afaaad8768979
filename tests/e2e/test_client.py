"""End to end: `player.SyncClient`, the blocking client, against a real daemon."""

from __future__ import annotations

import asyncio

import pytest

from player import SyncClient
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
