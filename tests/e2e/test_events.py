"""End to end, issue 5: `events` as a client sees them, checked against the recording."""

from __future__ import annotations

import asyncio

import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Listener,
    heard_at_least,
    pieces,
    quiet_for,
    sound_ms,
)
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

TEXT = "The first sentence is short. The second one runs on for a good while longer."
LONG = " ".join(f"Sentence number {n} keeps the speaker busy for a while." for n in range(8))


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.1)


async def test_an_utterance_is_queued_started_spoken_and_finished(
    tone_server: ToneServer, daemon: Daemon
) -> None:
    async with (
        Client(daemon.socket) as client,
        Client(daemon.socket) as speaker,
        Listener(client) as listener,
    ):
        reply = await asyncio.wait_for(speaker.say(pieces(TEXT), wait=True), TIMEOUT)
        events = await listener.until("finished")

    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["queued", "started"]
    assert kinds[-1] == "finished"
    assert set(kinds[2:-1]) == {"text"}
    assert all(e["id"] == reply.utterance_id for e in events)
    first_audio = events[1]["first_audio_ms"]
    assert isinstance(first_audio, int)
    assert 100 <= first_audio < 2000  # the server waits 100 ms before its first chunk
    spoken = " ".join(str(e["text"]) for e in events if e["event"] == "text")
    assert spoken.split() == TEXT.split()
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert events[-1]["played_ms"] == len(call.audio) // 2 * 1000 // RATE == reply.played_ms


async def test_stop_reports_what_was_heard_to_within_50_ms(
    daemon: Daemon, recorder: Recorder
) -> None:
    start_index = recorder.sample_count()
    async with Client(daemon.socket) as client, Listener(client) as listener:
        said = await run_cli(daemon.config, daemon.env, "say", LONG)
        assert said.returncode == 0, said.stderr
        # Let about 1.5 s be heard, then barge in.
        await heard_at_least(recorder, start_index, 1500)
        stopped = await run_cli(daemon.config, daemon.env, "stop")
        assert stopped.returncode == 0, stopped.stderr
        events = await listener.until("cancelled")

    cancelled = events[-1]
    x = await quiet_for(recorder, start_index, 0.3)
    heard_ms = sound_ms(x[start_index:])
    assert cancelled["played_ms"] == pytest.approx(heard_ms, abs=50)
    heard_text = str(cancelled["text"])
    assert heard_text
    assert LONG.startswith(heard_text)
    assert len(heard_text) < len(LONG)
