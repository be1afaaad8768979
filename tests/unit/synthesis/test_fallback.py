"""player.synthesis.fallback: when the local synthesizer takes over, and when it must not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest

from player.audio.ring import Frames
from player.errors import SynthesisError
from player.synthesis.fallback import Fallback
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, VoiceChoice

TIMEOUT = 5.0
"""Bound on every wait in this file; nothing here should take more than a few ms."""


def chunk(value: float, frames: int = 80) -> Frames:
    return np.full(frames, value, dtype=np.float32)


class Source:
    """A one-shot text source fed by the test: pieces may arrive while it is being read."""

    def __init__(self, *pieces: str, closed: bool = False) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.finished = False
        """The generator has returned or been closed: nobody can read it any more."""
        self.put(*pieces)
        if closed:
            self.close()

    def put(self, *pieces: str) -> None:
        for piece in pieces:
            self._queue.put_nowait(piece)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def pieces(self) -> AsyncIterator[str]:
        try:
            while (piece := await self._queue.get()) is not None:
                yield piece
        finally:
            self.finished = True


class Recorder:
    """A sink that keeps every chunk it is given."""

    def __init__(self) -> None:
        self.chunks: list[Frames] = []
        self.texts: list[str] = []

    async def audio(self, frames: Frames) -> None:
        self.chunks.append(frames)

    def spoken(self, spoken: Spoken) -> None:
        self.texts.append(spoken.text)

    async def withdraw(self, frames: int) -> int:
        raise AssertionError("nothing here resumes a call")

    @property
    def frames(self) -> Frames:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)


class Primary:
    """Reads `read` pieces, optionally plays `audio` first, then fails with `error`; with no
    error it reads everything, plays one chunk per piece and returns `result`."""

    def __init__(
        self,
        error: SynthesisError | None = None,
        *,
        read: int = 1,
        audio: Frames | None = None,
        result: CallResult | None = None,
    ) -> None:
        self.error = error
        self.read = read
        self.audio = audio
        self.result = result or CallResult(0, "cloud-request", 0.01)
        self.seen: list[Piece] = []
        self.calls = 0

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        self.calls += 1
        if self.error is None:
            async for piece in pieces:
                self.seen.append(piece)
                await sink.audio(chunk(0.5))
            return self.result
        for _ in range(self.read):
            self.seen.append(await anext(pieces))
        if self.audio is not None:
            await sink.audio(self.audio)
        raise self.error


class BlockedPrimary:
    """Reads one piece, then waits forever (until cancelled)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        await anext(pieces)
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


class Local:
    """Plays one chunk of 0.25 per piece; `received` reports each piece as it arrives."""

    def __init__(self) -> None:
        self.seen: list[Piece] = []
        self.received: asyncio.Queue[Piece] = asyncio.Queue()
        self.calls = 0

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        self.calls += 1
        frames = 0
        async for piece in pieces:
            self.seen.append(piece)
            self.received.put_nowait(piece)
            await sink.audio(chunk(0.25))
            frames += 80
        return CallResult(frames, "local-request", 0.125)


async def heard_by(local: Local, call: asyncio.Task[CallResult]) -> Piece:
    """The next piece `local` reads; fails at once, with the call's error, if the call ends
    first."""
    get = asyncio.create_task(local.received.get())
    await asyncio.wait([get, call], timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if get.done():
        return get.result()
    get.cancel()
    if call.done():
        call.result()  # raises the call's own error, if it failed
        raise AssertionError("the call finished before local read another piece")
    raise AssertionError(f"local read no further piece within {TIMEOUT} s")


async def still_running(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Tasks started since `before` that have not finished within TIMEOUT. (Closing an
    abandoned async generator may start a short-lived task, so wait for them to settle.)"""
    try:
        async with asyncio.timeout(TIMEOUT):
            while extra := asyncio.all_tasks() - before:
                await asyncio.wait(extra)
    except TimeoutError:
        pass
    return asyncio.all_tasks() - before


def unreachable(code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> SynthesisError:
    return SynthesisError("cannot reach tts.example:443", code, request_id="r-1")


@pytest.mark.parametrize(
    ("code", "read"),
    [
        (grpc.StatusCode.UNAVAILABLE, 2),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 2),
        (grpc.StatusCode.UNAVAILABLE, 0),
    ],
)
async def test_unreachable_primary_hands_all_the_text_to_local(code, read):
    source = Source("one ", "two ")
    primary = Primary(unreachable(code), read=read)
    local = Local()
    sink = Recorder()
    call = asyncio.create_task(Fallback(primary, local).synthesize(source.pieces(), sink))
    try:
        # Local has started and caught up with what was there before the primary failed...
        assert [await heard_by(local, call) for _ in range(2)] == ["one ", "two "]
        # ...and the rest of the text arrives only now, while local is speaking.
        source.put("three ", "four ")
        source.close()
        result = await asyncio.wait_for(call, TIMEOUT)
    finally:
        call.cancel()

    assert primary.seen == ["one ", "two "][:read]
    assert local.calls == 1
    assert local.seen == ["one ", "two ", "three ", "four "]
    assert result == CallResult(320, "local-request", 0.125, fallback=True)
    np.testing.assert_array_equal(sink.frames, np.full(320, 0.25, dtype=np.float32))
    assert source.finished


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    ],
)
async def test_errors_the_user_must_fix_are_never_hidden(code):
    error = SynthesisError("the API key is not valid", code, request_id="r-2")
    local = Local()
    source = Source("one ", "two ", closed=True)

    with pytest.raises(SynthesisError) as info:
        await asyncio.wait_for(
            Fallback(Primary(error), local).synthesize(source.pieces(), Recorder()), TIMEOUT
        )

    assert info.value is error
    assert str(info.value) == "the API key is not valid"
    assert info.value.code == code
    assert local.calls == 0


async def test_audio_already_played_is_never_repeated():
    error = unreachable()
    primary = Primary(error, read=1, audio=chunk(0.5, 160))
    local = Local()
    sink = Recorder()
    source = Source("one ", "two ", closed=True)

    with pytest.raises(SynthesisError) as info:
        await asyncio.wait_for(Fallback(primary, local).synthesize(source.pieces(), sink), TIMEOUT)

    assert info.value is error
    assert local.calls == 0
    np.testing.assert_array_equal(sink.frames, chunk(0.5, 160))


async def test_a_successful_primary_result_is_returned_as_is():
    expected = CallResult(160, "cloud-request", 0.01)
    primary = Primary(result=expected)
    local = Local()
    sink = Recorder()
    source = Source("one ", "two ", closed=True)

    result = await asyncio.wait_for(
        Fallback(primary, local).synthesize(source.pieces(), sink), TIMEOUT
    )

    assert result is expected
    assert not result.fallback
    assert primary.seen == ["one ", "two "]
    assert local.calls == 0
    np.testing.assert_array_equal(sink.frames, chunk(0.5, 160))


async def test_cancelling_the_call_cancels_it_and_leaves_nothing_running():
    source = Source("one ")  # never closed: only cancellation ends the call
    primary = BlockedPrimary()
    local = Local()
    before = asyncio.all_tasks()
    call = asyncio.create_task(Fallback(primary, local).synthesize(source.pieces(), Recorder()))
    await asyncio.wait_for(primary.entered.wait(), TIMEOUT)

    call.cancel()
    done, _ = await asyncio.wait([call], timeout=TIMEOUT)

    assert call in done
    assert call.cancelled()
    assert primary.cancelled
    assert local.calls == 0
    assert source.finished  # the source's reader was stopped and its generator closed
    assert await still_running(before) == set()


async def test_the_fallback_warning_is_rate_limited(caplog):
    fallback = Fallback(Primary(unreachable(), read=0), Local())
    caplog.set_level(logging.WARNING, logger="player.synthesis.fallback")

    for _ in range(2):
        source = Source("one ", closed=True)
        result = await asyncio.wait_for(fallback.synthesize(source.pieces(), Recorder()), TIMEOUT)
        assert result.fallback

    records = [r for r in caplog.records if r.name == "player.synthesis.fallback"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "cannot reach tts.example:443" in records[0].getMessage()
    assert "local" in records[0].getMessage()
