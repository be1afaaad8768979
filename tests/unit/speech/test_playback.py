import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from player.errors import SynthesisError
from player.speech.playback import Playback
from player.speech.utterance import Utterance
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, VoiceChoice
from tests.harness.fake_stream import FakeStream, make_output

TIMEOUT = 5.0


class FakeSynthesis:
    """The Synthesis interface: 10 ms of audio per piece, or the exception it is given."""

    def __init__(self) -> None:
        self.fail_with: Exception | None = None
        self.calls = 0

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
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


# --- taking back the tail of a broken call (player.synthesis.resume) -------------------------

A, B, C = 0.25, 0.5, 0.75
"""Sample values of three sentences, so the output tells them apart."""


def block(value: float, frames: int) -> np.ndarray:
    return np.full(frames, value, dtype=np.float32)


class BrokenThenResumed:
    """A Synthesis that does what a resumed call does to its sink: sentence A whole and
    the first half of B, then (once `go` is set) takes the half back and sends B whole
    and C, text positions moved behind the audio kept."""

    def __init__(self) -> None:
        self.sent_half = asyncio.Event()
        self.go = asyncio.Event()
        self.taken = -1

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        async for _ in pieces:
            pass
        await sink.audio(block(A, 800))
        sink.spoken(Spoken("A ", 0))
        await sink.audio(block(B, 400))
        sink.spoken(Spoken("B ", 100))
        self.sent_half.set()
        await self.go.wait()
        self.taken = await sink.withdraw(400)
        kept = 1200 - self.taken
        await sink.audio(block(B, 800))
        sink.spoken(Spoken("B ", kept // 8))
        await sink.audio(block(C, 800))
        sink.spoken(Spoken("C ", (kept + 800) // 8))
        return CallResult(kept + 1600, "", 0.0, resumed=True)


async def play_out(stream: FakeStream, until: asyncio.Future[int]) -> np.ndarray:
    """Play the PortAudio thread until the utterance resolves; what it played (left)."""
    out = []
    while not until.done():
        out.append(stream.pull(80)[:, 0])
        await asyncio.sleep(0.001)
    return np.concatenate(out)


async def test_a_withdrawn_tail_not_yet_playing_is_never_heard_nor_its_text():
    output, (stream,) = make_output(prebuffer_ms=0)
    synthesis = BrokenThenResumed()
    playback = Playback(output, synthesis)
    runner = asyncio.create_task(playback.run())
    try:
        with playback.events.listen() as events:
            utterance = await speak(playback, "words")
            await asyncio.wait_for(synthesis.sent_half.wait(), TIMEOUT)
            synthesis.go.set()
            played = await asyncio.wait_for(play_out(stream, utterance.done), TIMEOUT)
            seen = [events.get_nowait() for _ in range(events.qsize())]
        speech = played[played != 0]
        np.testing.assert_array_equal(
            speech, np.concatenate([block(A, 800), block(B, 800), block(C, 800)])
        )
        assert synthesis.taken == 400
        texts = [(e.text, e.start_ms) for e in seen if e.kind == "text"]
        assert texts == [("A", 0), ("B", 100), ("C", 200)]
        (finished,) = [e for e in seen if e.kind == "finished"]
        assert finished.played_ms == 300
        assert playback.counters.resumed == 1
    finally:
        runner.cancel()
        await asyncio.wait([runner], timeout=TIMEOUT)


async def test_a_withdrawn_tail_that_is_playing_fades_and_what_was_heard_stays():
    output, (stream,) = make_output(prebuffer_ms=0, fade_ms=5.0)
    synthesis = BrokenThenResumed()
    playback = Playback(output, synthesis)
    runner = asyncio.create_task(playback.run())
    try:
        with playback.events.listen() as events:
            utterance = await speak(playback, "words")
            await asyncio.wait_for(synthesis.sent_half.wait(), TIMEOUT)
            first = np.concatenate([stream.pull(80)[:, 0] for _ in range(12)])  # into B
            synthesis.go.set()
            rest = await asyncio.wait_for(play_out(stream, utterance.done), TIMEOUT)
            seen = [events.get_nowait() for _ in range(events.qsize())]
        played = np.concatenate([first, rest])
        fade = 40  # 5 ms at 8 kHz
        assert synthesis.taken == 400 - 160 - fade
        # A, then B from its start up to the fade, then B whole and C.
        speech = played[played != 0]
        assert len(speech) == 800 + 160 + fade - 1 + 1600  # the fade ends in a silent sample
        np.testing.assert_array_equal(speech[:960], np.concatenate([block(A, 800), block(B, 160)]))
        np.testing.assert_array_equal(
            speech[-1600:], np.concatenate([block(B, 800), block(C, 800)])
        )
        texts = [(e.text, e.start_ms) for e in seen if e.kind == "text"]
        assert texts == [("A", 0), ("B", 100), ("B", 125), ("C", 225)]
        (finished,) = [e for e in seen if e.kind == "finished"]
        assert finished.played_ms == (1000 + 1600) // 8
    finally:
        runner.cancel()
        await asyncio.wait([runner], timeout=TIMEOUT)
