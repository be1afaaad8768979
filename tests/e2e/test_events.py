"""End to end, issue 5: `events` as a client sees them, checked against the recording."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest

from player.cli import event_dict
from player.control.client import Client, EventStream
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

RATE = 48000
TIMEOUT = 30.0
KEY = "sk-test-key-events"
TEXT = "The first sentence is short. The second one runs on for a good while longer."
LONG = " ".join(f"Sentence number {n} keeps the speaker busy for a while." for n in range(8))

Recording = npt.NDArray[np.int16]


@pytest.fixture
async def tone_server() -> AsyncIterator[ToneServer]:
    script = ToneScript(api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.1)
    async with ToneServer(script) as server:
        yield server


@pytest.fixture
async def daemon(tone_server: ToneServer, daemons: Daemons) -> Daemon:
    return await daemons.start(tone_server.address, KEY)


async def one(text: str) -> AsyncIterator[str]:
    yield text


async def collect(stream: EventStream, until: str, into: list[dict[str, object]]) -> None:
    """Events as the CLI prints them, up to and including the first of kind `until`."""
    async for event in stream:
        into.append(event_dict(event))
        if event.kind == until:
            stream.close()
            return


def sound_ms(x: Recording) -> float:
    return sum(end - start for start, end in aa.sound_spans(x, RATE)) * 1000 / RATE


async def test_an_utterance_is_queued_started_spoken_and_finished(
    tone_server: ToneServer, daemon: Daemon
) -> None:
    events: list[dict[str, object]] = []
    async with Client(daemon.socket) as listener, Client(daemon.socket) as speaker:
        stream = await listener.subscribe()
        listening = asyncio.create_task(collect(stream, "finished", events))
        reply = await asyncio.wait_for(speaker.say(one(TEXT), wait=True), TIMEOUT)
        await asyncio.wait_for(listening, TIMEOUT)

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
    events: list[dict[str, object]] = []
    start_index = recorder.sample_count()
    async with Client(daemon.socket) as listener:
        stream = await listener.subscribe()
        listening = asyncio.create_task(collect(stream, "cancelled", events))
        said = await run_cli(daemon.config, daemon.env, "say", LONG)
        assert said.returncode == 0, said.stderr
        # Let about 1.5 s be heard, then barge in.
        await asyncio.to_thread(
            recorder.wait_until, lambda x: sound_ms(x[start_index:]) >= 1500, TIMEOUT
        )
        stopped = await run_cli(daemon.config, daemon.env, "stop")
        assert stopped.returncode == 0, stopped.stderr
        await asyncio.wait_for(listening, TIMEOUT)

    cancelled = events[-1]
    x = await asyncio.to_thread(
        recorder.wait_until,
        lambda x: len(x) - start_index - aa.sound_spans(x[start_index:], RATE)[-1][1] >= 0.3 * RATE,
        TIMEOUT,
    )
    heard_ms = sound_ms(x[start_index:])
    assert cancelled["played_ms"] == pytest.approx(heard_ms, abs=50)
    heard_text = str(cancelled["text"])
    assert heard_text
    assert LONG.startswith(heard_text)
    assert len(heard_text) < len(LONG)
