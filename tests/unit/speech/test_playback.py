import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from player.errors import SynthesisError
from player.speech.playback import Playback
from player.speech.utterance import Utterance
from player.synthesis.interface import CallResult, Piece, Sink
from tests.harness.fake_stream import FakeStream, make_output

TIMEOUT = 5.0


class FakeSynthesis:
    """The Synthesis interface: 10 ms of audio per piece, or the exception it is given."""

    def __init__(self) -> None:
        self.fail_with: Exception | None = None
        self.calls = 0

    async def synthesize(self, pieces: AsyncIterator[Piece], sink: Sink) -> CallResult:
        self.calls += 1
        frames = 0
        async for _ in pieces:
            if self.fail_with is not None:
                raise self.fail_with
            await sink.audio(np.full(80, 0.25, dtype=np.float32))
            frames += 80
        return CallResult(frames, "", 0.0)


async def drain(stream: FakeStream, until: asyncio.Future[int]) -> None:
    """Play the PortAudio thread until the utterance resolves."""
    while not until.done():
        stream.pull(80)
        await asyncio.sleep(0.001)


async def speak(playback: Playback, text: str) -> Utterance:
    utterance = Utterance()
    playback.submit(utterance)
    utterance.feed(text)
    utterance.close()
    return utterance


async def test_an_unexpected_error_fails_the_utterance_and_playback_goes_on():
    output, (stream,) = make_output(prebuffer_ms=0)
    synthesis = FakeSynthesis()
    playback = Playback(output, synthesis)
    runner = asyncio.create_task(playback.run())
    try:
        synthesis.fail_with = RuntimeError("boom")
        broken = await speak(playback, "one two")
        with pytest.raises(SynthesisError, match="internal error: boom"):
            await asyncio.wait_for(broken.done, TIMEOUT)
        assert playback.counters.errors == 1

        synthesis.fail_with = None
        fine = await speak(playback, "three four")
        await asyncio.wait_for(drain(stream, fine.done), TIMEOUT)
        assert fine.done.result() == 160  # "three " and "four ": two pieces
        assert playback.counters.utterances == 1
    finally:
        runner.cancel()
        await asyncio.wait([runner], timeout=TIMEOUT)


async def test_stop_fails_queued_utterances_as_stopped():
    output, (stream,) = make_output(prebuffer_ms=0)
    playback = Playback(output, FakeSynthesis())
    queued = [await speak(playback, f"text {i}") for i in range(3)]
    stopper = asyncio.create_task(playback.stop())
    while not stopper.done():  # the fade needs the callback to run
        stream.pull(80)
        await asyncio.sleep(0.001)
    assert stopper.result() == 3
    for utterance in queued:
        with pytest.raises(SynthesisError, match="stopped"):
            await asyncio.wait_for(utterance.done, TIMEOUT)
    assert playback.queue_length == 0


async def test_cancelling_a_queued_utterance_reports_nothing_played():
    output, _ = make_output(prebuffer_ms=0)
    playback = Playback(output, FakeSynthesis())
    with playback.events.listen() as events:
        utterance = Utterance()
        playback.submit(utterance)  # not running: it stays queued
        await playback.cancel(utterance)
        kinds = [events.get_nowait() for _ in range(2)]
    assert [e.kind for e in kinds] == ["queued", "cancelled"]
    assert kinds[1].played_ms == 0
    assert kinds[1].text == ""
    assert utterance.done.done()
