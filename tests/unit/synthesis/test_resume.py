"""player.synthesis.resume: where a broken call resumes, what it takes back, and when it
gives up."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np
import pytest

from player.audio.ring import Frames
from player.errors import SynthesisError
from player.synthesis.fallback import Fallback
from player.synthesis.interface import (
    FORCE,
    CallResult,
    Piece,
    Sink,
    Spoken,
    Synthesis,
    VoiceChoice,
)
from player.synthesis.resume import Resume

TIMEOUT = 5.0
"""Bound on every wait in this file; nothing here should take more than a second."""
RATE = 8000
PER_CHAR = 80
"""Frames of audio per character the fake speaks (10 ms at RATE)."""
CHUNK = 100
"""Frames per audio chunk the fake sends."""

ONE, TWO, THREE = "Sentence one. ", "And two. ", "Then three. "
SENTENCES: list[Piece] = [ONE, FORCE, TWO, FORCE, THREE, FORCE]


def voice(text: str) -> float:
    """The sample value the fake speaks ``text`` with: the recording tells pieces apart."""
    return (sum(map(ord, text.strip())) % 997 + 1) / 1000


def spoken_audio(*texts: str) -> Frames:
    """Each text whole, as the fake speaks it."""
    return np.concatenate(
        [np.full(len(t.strip()) * PER_CHAR, voice(t), dtype=np.float32) for t in texts]
    )


@dataclass(frozen=True)
class Plan:
    """What one call of the fake does."""

    fail_after: int | None = None
    """Frames of audio it sends before failing (0: fails before any audio)."""
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    delay: float = 0.0
    """Seconds it takes to answer at all (a slow reconnect)."""
    per_force: bool = False
    """Speaks (and marks with one text chunk) what it holds at each FORCE, as a service
    waiting for context does; otherwise each piece as it comes."""
    retry_once: bool = False
    """Its error says the credentials were renewed since (`SynthesisError.retry_once`)."""


class FakeService:
    """A `Synthesis` following one `Plan` per call (then speaking normally); it records
    the pieces each call was sent."""

    def __init__(self, *plans: Plan) -> None:
        self._plans = list(plans)
        self.calls: list[list[Piece]] = []

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        plan = self._plans.pop(0) if self._plans else Plan()
        sent: list[Piece] = []
        self.calls.append(sent)
        frames, held = 0, ""
        await asyncio.sleep(plan.delay)
        if plan.fail_after == 0:
            raise SynthesisError("cannot connect", plan.code, retry_once=plan.retry_once)
        async for piece in pieces:
            sent.append(piece)
            if isinstance(piece, str):
                held += piece
                if plan.per_force:
                    continue
            if not held:
                continue
            text, held = held, ""
            frames = await self._speak(text, frames, sink, plan)
        if held:
            frames = await self._speak(held, frames, sink, plan)
        return CallResult(frames, "request", 0.01)

    @staticmethod
    async def _speak(text: str, frames: int, sink: Sink, plan: Plan) -> int:
        audio = spoken_audio(text)
        start_ms = frames * 1000 // RATE
        for at in range(0, len(audio), CHUNK):
            chunk = audio[at : at + CHUNK]
            if plan.fail_after is not None and frames + len(chunk) > plan.fail_after:
                if plan.fail_after > frames:
                    await sink.audio(chunk[: plan.fail_after - frames])
                    if at == 0:
                        sink.spoken(Spoken(text, start_ms))
                raise SynthesisError("stream broke off", plan.code)
            await sink.audio(chunk)
            if at == 0:
                sink.spoken(Spoken(text, start_ms))
            frames += len(chunk)
        return frames


class Speaker:
    """A sink like the ring: `played` frames of it have been heard and cannot be taken
    back."""

    def __init__(self) -> None:
        self.frames = np.zeros(0, dtype=np.float32)
        self.texts: list[Spoken] = []
        self.played = 0
        self.withdrawn: list[int] = []

    async def audio(self, frames: Frames) -> None:
        self.frames = np.concatenate([self.frames, frames])

    def spoken(self, spoken: Spoken) -> None:
        self.texts.append(spoken)

    async def withdraw(self, frames: int) -> int:
        taken = max(0, min(frames, len(self.frames) - self.played))
        self.frames = self.frames[: len(self.frames) - taken]
        self.withdrawn.append(taken)
        return taken


class PlayingSpeaker(Speaker):
    """Everything but the last `unplayed` frames given to it has been heard."""

    def __init__(self, unplayed: int) -> None:
        super().__init__()
        self._unplayed = unplayed

    async def audio(self, frames: Frames) -> None:
        await super().audio(frames)
        self.played = max(0, len(self.frames) - self._unplayed)


async def source(*pieces: Piece) -> AsyncIterator[Piece]:
    for piece in pieces:
        yield piece


def resuming(service: Synthesis, retry_s: float = 5.0) -> Resume:
    return Resume(service, RATE, retry_s, first_delay=0.01, max_delay=0.05, rng=random.Random(1))


async def speak(synthesis: Synthesis, sink: Sink, *pieces: Piece) -> CallResult:
    return await asyncio.wait_for(synthesis.synthesize(source(*pieces), sink), TIMEOUT)


def frames_of(*texts: str) -> int:
    return sum(len(t.strip()) for t in texts) * PER_CHAR


def ms(frames: int) -> int:
    return frames * 1000 // RATE


# --- where it resumes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ],
)
async def test_a_call_broken_mid_sentence_resumes_at_that_sentence(code: grpc.StatusCode) -> None:
    service = FakeService(Plan(fail_after=frames_of(ONE) + 250, code=code))
    speaker = Speaker()
    result = await speak(resuming(service), speaker, *SENTENCES)

    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert service.calls[1] == [TWO, FORCE, THREE, FORCE]
    assert speaker.withdrawn == [250]
    assert [(s.text, s.start_ms) for s in speaker.texts] == [
        (ONE, 0),
        (TWO, ms(frames_of(ONE))),
        (TWO, ms(frames_of(ONE))),  # the cut one's mark is taken back by the sink itself
        (THREE, ms(frames_of(ONE, TWO))),
    ]
    assert result.frames == frames_of(ONE, TWO, THREE)
    assert result.resumed


async def test_a_call_broken_between_sentences_asks_again_for_the_last_one_begun() -> None:
    # All of TWO came, but nothing says so until THREE's audio begins.
    service = FakeService(Plan(fail_after=frames_of(ONE, TWO)))
    speaker = Speaker()
    await speak(resuming(service), speaker, *SENTENCES)

    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert service.calls[1] == [TWO, FORCE, THREE, FORCE]


async def test_sentences_marked_once_per_force_resume_at_the_sentence_s_first_piece() -> None:
    pieces: list[Piece] = ["Sentence ", "one. ", FORCE, "And ", "two. ", FORCE, "Then three. "]
    service = FakeService(
        Plan(fail_after=frames_of(ONE) + 150, per_force=True), Plan(per_force=True)
    )
    speaker = Speaker()
    result = await speak(resuming(service), speaker, *pieces)

    assert service.calls[1] == ["And ", "two. ", FORCE, "Then three. "]
    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert result.frames == frames_of(ONE, TWO, THREE)


async def test_a_half_sentence_already_heard_stays_and_the_sentence_is_spoken_again() -> None:
    service = FakeService(Plan(fail_after=frames_of(ONE) + 250))
    speaker = PlayingSpeaker(unplayed=50)
    result = await speak(resuming(service), speaker, *SENTENCES)

    # 200 frames of TWO were heard: they stay, and TWO follows again from its start.
    assert speaker.withdrawn == [50]
    heard_two = spoken_audio(TWO)[:200]
    expected = np.concatenate([spoken_audio(ONE), heard_two, spoken_audio(TWO, THREE)])
    np.testing.assert_array_equal(speaker.frames, expected)
    kept = frames_of(ONE) + 200
    assert [s.start_ms for s in speaker.texts][-2:] == [ms(kept), ms(kept + frames_of(TWO))]
    assert result.frames == kept + frames_of(TWO, THREE)


async def test_a_call_that_never_got_going_is_not_resumed() -> None:
    service = FakeService(Plan(fail_after=0))
    with pytest.raises(SynthesisError, match="cannot connect"):
        await speak(resuming(service), Speaker(), *SENTENCES)
    assert len(service.calls) == 1


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL])
async def test_a_call_refused_at_once_as_busy_is_tried_again(code: grpc.StatusCode) -> None:
    service = FakeService(Plan(fail_after=0, code=code))
    speaker = Speaker()
    result = await speak(resuming(service), speaker, *SENTENCES)

    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert service.calls[1] == SENTENCES
    assert result.resumed


async def test_a_whole_call_is_not_marked_resumed() -> None:
    speaker = Speaker()
    result = await speak(resuming(FakeService()), speaker, *SENTENCES)
    assert not result.resumed
    assert result.frames == frames_of(ONE, TWO, THREE)


# --- what is never retried, and for how long the rest is -------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNKNOWN,
    ],
)
async def test_other_errors_are_never_retried(code: grpc.StatusCode) -> None:
    service = FakeService(Plan(fail_after=frames_of(ONE) + 250, code=code))
    with pytest.raises(SynthesisError) as failed:
        await speak(resuming(service), Speaker(), *SENTENCES)
    assert failed.value.code is code
    assert len(service.calls) == 1


async def test_a_key_rejected_mid_retry_is_reported_not_retried() -> None:
    service = FakeService(
        Plan(fail_after=frames_of(ONE) + 250),
        Plan(fail_after=0, code=grpc.StatusCode.UNAUTHENTICATED),
    )
    speaker = Speaker()
    with pytest.raises(SynthesisError) as failed:
        await speak(resuming(service), speaker, *SENTENCES)
    assert failed.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert len(service.calls) == 2
    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE))


@pytest.mark.parametrize("retry_s", [10.0, 0.0])
async def test_a_call_refused_for_a_token_renewed_since_is_made_again_once(
    retry_s: float,
) -> None:
    refused = Plan(fail_after=0, code=grpc.StatusCode.UNAUTHENTICATED, retry_once=True)
    service = FakeService(refused)
    speaker = Speaker()

    await speak(resuming(service, retry_s), speaker, *SENTENCES)

    assert len(service.calls) == 2
    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))


async def test_a_renewed_token_refused_again_is_reported() -> None:
    refused = Plan(fail_after=0, code=grpc.StatusCode.UNAUTHENTICATED, retry_once=True)
    service = FakeService(refused, refused)

    with pytest.raises(SynthesisError) as info:
        await speak(resuming(service), Speaker(), *SENTENCES)

    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert len(service.calls) == 2


async def test_retries_back_off_within_retry_s_then_fail_in_one_line() -> None:
    down = Plan(fail_after=0)
    service = FakeService(Plan(fail_after=frames_of(ONE) + 250), *[down] * 1000)
    began = time.monotonic()
    with pytest.raises(SynthesisError) as failed:
        await speak(resuming(service, retry_s=0.3), Speaker(), *SENTENCES)
    took = time.monotonic() - began

    assert 0.3 <= took < 0.3 + 0.5
    assert failed.value.code is grpc.StatusCode.UNAVAILABLE
    assert str(failed.value) == ("cannot connect (retried for 0.3 s, [speechkit] retry_s)")
    # Backed off: far fewer calls than a tight loop would make; more than one attempt.
    assert 3 <= len(service.calls) < 0.3 / 0.005


async def test_retry_s_bounds_the_time_spent_resuming_not_the_time_since_the_first_break() -> None:
    service = FakeService(
        Plan(fail_after=frames_of(ONE) + 250),
        Plan(delay=0.2, fail_after=frames_of(TWO) + 250),
        Plan(delay=0.2),
    )
    speaker = Speaker()
    result = await speak(resuming(service, retry_s=0.3), speaker, *SENTENCES)

    # Two outages of 0.2 s each: 0.4 s in all, over retry_s, but each one was survived.
    assert len(service.calls) == 3
    assert service.calls[2] == [THREE, FORCE]
    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert result.resumed


async def test_retry_s_zero_never_retries() -> None:
    service = FakeService(Plan(fail_after=frames_of(ONE) + 250))
    with pytest.raises(SynthesisError, match="stream broke off"):
        await speak(resuming(service, retry_s=0), Speaker(), *SENTENCES)
    assert len(service.calls) == 1


async def test_a_resumed_call_that_cannot_reach_the_cloud_falls_back_for_the_rest() -> None:
    cloud = FakeService(Plan(fail_after=frames_of(ONE) + 250), Plan(fail_after=0))
    local = FakeService()
    speaker = Speaker()
    result = await speak(resuming(Fallback(cloud, local)), speaker, *SENTENCES)

    assert local.calls == [[TWO, FORCE, THREE, FORCE]]
    np.testing.assert_array_equal(speaker.frames, spoken_audio(ONE, TWO, THREE))
    assert result.fallback
    assert result.resumed
