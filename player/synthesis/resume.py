"""A call that breaks off with a transient error is resumed by a new one.

No SpeechKit SDK reopens a broken StreamSynthesis call, so an utterance would otherwise
end mid-sentence whenever the network blinks. Here the text whose audio did not come is
sent again on a new call, from the first sentence not held in full, while the audio
already received keeps playing. A sentence (the text up to a `FORCE`) is held in full
once the next one's audio has begun, or the call ended normally. The part of a
half-received sentence is taken back from the sink (`Sink.withdraw`) and the sentence
asked for again, so it is heard whole: silently if it had not started playing, from its
start again if it had.

A call that was under way (some audio came) is resumed, and so is one the service
refused at once as busy or broken; one that never got going otherwise (unreachable,
silent) has its own bounds and the fallback, and fails as before. New calls back off
with jitter. The time spent resuming, from each break until audio flows again, is
bounded by `retry_s` per utterance (per call of `player.synthesis.long_text`, for a text
over 5000 characters).
Authentication and argument errors, and anything else not known to pass, are not
retried, with one exception: a call refused for a token that has been renewed since
(`SynthesisError.retry_once`) is made again once, at once, from where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator

import grpc

from player.audio.ring import Frames
from player.errors import SynthesisError
from player.synthesis.interface import (
    FORCE,
    CallResult,
    Piece,
    Sink,
    Spoken,
    Synthesis,
    VoiceChoice,
)
from player.synthesis.replay import Replay

_LOGGER = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
"""What a call may break off with and still pass: a dropped or reset connection shows as
UNAVAILABLE or INTERNAL, a busy service as RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED."""
REFUSED_CODES = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL})
"""What a reachable service refuses a call with at once when it is busy or hiccups: worth
a new call even before any audio came, unlike a call that waited out its own timeouts."""
FIRST_DELAY = 0.1
"""Seconds: the backoff's first bound; it doubles per attempt."""
MAX_DELAY = 2.0
"""Seconds: the backoff's largest bound."""


class Resume:
    """A `Synthesis` that speaks through `inner` and resumes its broken calls."""

    def __init__(
        self,
        inner: Synthesis,
        samplerate: int,
        retry_s: float,
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        rng: random.Random | None = None,
    ) -> None:
        self._inner = inner
        self._samplerate = samplerate
        self._retry_s = retry_s
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._rng = rng or random.Random()

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        replay = Replay(pieces)
        pump = asyncio.create_task(replay.pump())
        try:
            return await self._attempts(replay, sink, choice)
        finally:
            pump.cancel()
            await asyncio.wait([pump])

    async def _attempts(self, replay: Replay, sink: Sink, choice: VoiceChoice | None) -> CallResult:
        began = time.monotonic()
        kept = 0  # frames of earlier calls that stay in the sink
        first_piece = 0  # where the current call's text starts in the replay
        trying = _Trying(self._retry_s)
        attempt = 0
        first_audio: float | None = None
        renewed = False  # a call was made again with renewed credentials
        while True:
            call = _CallSink(sink, replay.pieces, first_piece, kept, self._samplerate)
            try:
                result = await self._inner.synthesize(replay.reader(first_piece), call, choice)
            except SynthesisError as err:
                if err.retry_once and not renewed:
                    renewed = True
                    first_piece, taken = call.resume_point()
                    kept += call.frames - await sink.withdraw(taken)
                    first_audio = first_audio if first_audio is not None else call.first_audio
                    attempt += 1
                    _LOGGER.info("trying again with the renewed credentials")
                    continue
                if attempt == 0 and call.first_audio is None and err.code not in REFUSED_CODES:
                    # It never got going: connect_timeout and first_audio_timeout_s
                    # already bounded that, and the fallback (if any) had its turn.
                    raise
                if call.first_audio is not None:
                    trying.flowing(call.first_audio)
                trying.broke(time.monotonic())
                delay = self._delay(err, attempt, trying)
                first_piece, taken = call.resume_point()
                kept += call.frames - await sink.withdraw(taken)
                first_audio = first_audio if first_audio is not None else call.first_audio
                attempt += 1
                _LOGGER.warning(
                    "synthesis broke off (%s); resuming with the sentence it cut, "
                    "attempt %d in %.2f s",
                    err,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if attempt == 0:
                return result
            first_audio = first_audio if first_audio is not None else call.first_audio
            return dataclasses.replace(
                result,
                frames=kept + result.frames,
                first_audio_delay=None if first_audio is None else first_audio - began,
                resumed=True,
            )

    def _delay(self, err: SynthesisError, attempt: int, trying: _Trying) -> float:
        """How long to wait before the next call; raises ``err`` when there is to be none."""
        if err.code not in TRANSIENT_CODES or self._retry_s <= 0:
            raise err
        left = trying.left(time.monotonic())
        if left <= 0:
            raise SynthesisError(
                f"{err} (retried for {self._retry_s:g} s, [speechkit] retry_s)",
                err.code,
                err.request_id,
            ) from None
        # Full jitter: daemons that lost the same server do not all come back at once.
        bound = min(self._max_delay, self._first_delay * 2**attempt)
        return min(left, self._rng.uniform(0, bound))


class _Trying:
    """Time an utterance spent resuming: from each break until audio flowed again, summed,
    so two short outages in a long text are each survived."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._spent = 0.0
        self._since: float | None = None
        """When the current outage began; None while audio flows."""

    def broke(self, now: float) -> None:
        if self._since is None:
            self._since = now

    def flowing(self, since: float) -> None:
        """A call delivered audio from ``since`` on: the outage before it is over."""
        if self._since is not None:
            self._spent += max(0.0, since - self._since)
            self._since = None

    def left(self, now: float) -> float:
        outage = now - self._since if self._since is not None else 0.0
        return self._limit - self._spent - outage


def _chars(text: str) -> int:
    """What a text chunk is matched by: services may change its spaces, not its letters."""
    return sum(not c.isspace() for c in text)


class _CallSink:
    """One call's output on its way to the sink: its text positions moved behind the audio
    kept from the calls before it, and where each sentence's audio began noted."""

    def __init__(
        self, sink: Sink, log: list[Piece], first_piece: int, kept: int, samplerate: int
    ) -> None:
        self._sink = sink
        self._log = log
        self._first_piece = first_piece
        self._offset_ms = kept * 1000 // samplerate
        self._samplerate = samplerate
        self.frames = 0
        """Frames received in this call."""
        self._chunk_at = 0  # frames before the latest chunk
        self._chars = 0  # characters of the text chunks so far
        self.begun: list[tuple[int, int]] = []
        """(first piece, first frame) of each sentence whose audio began, in order."""
        self.first_audio: float | None = None

    async def audio(self, frames: Frames) -> None:
        if self.first_audio is None:
            self.first_audio = time.monotonic()
        self._chunk_at = self.frames
        await self._sink.audio(frames)
        # Counted once taken: a chunk cut short by a cancelled write must not move the
        # resume point into the sentence before it.
        self.frames += len(frames)

    def spoken(self, spoken: Spoken) -> None:
        piece = self._sentence_at(self._chars)
        self._chars += _chars(spoken.text)
        if not self.begun or self.begun[-1][0] != piece:
            self.begun.append((piece, self._frame(spoken.start_ms)))
        if self._offset_ms:
            offset = self._offset_ms
            spoken = dataclasses.replace(
                spoken,
                start_ms=spoken.start_ms + offset,
                words=tuple(
                    dataclasses.replace(w, start_ms=w.start_ms + offset) for w in spoken.words
                ),
            )
        self._sink.spoken(spoken)

    async def withdraw(self, frames: int) -> int:
        return await self._sink.withdraw(frames)

    def resume_point(self) -> tuple[int, int]:
        """Where the next call starts (a piece of the log) and the frames of this one's
        to take back: those of the last sentence whose audio began, which is not known to
        be whole."""
        if not self.begun:
            return self._first_piece, self.frames
        piece, frame = self.begun[-1]
        return piece, self.frames - frame

    def _frame(self, start_ms: int) -> int:
        """The frame a text chunk's audio starts at. Milliseconds are coarser than frames:
        the chunk that carried the text is where it starts, if that is the same place."""
        frame = min(start_ms * self._samplerate // 1000, self.frames)
        if abs(frame - self._chunk_at) <= self._samplerate // 1000 + 1:
            return self._chunk_at
        return frame

    def _sentence_at(self, chars: int) -> int:
        """The first piece of the sentence holding character ``chars`` of this call's text."""
        start, total = self._first_piece, 0
        for index in range(self._first_piece, len(self._log)):
            piece = self._log[index]
            if piece is FORCE:
                if total > chars:
                    return start
                start = index + 1
            else:
                assert isinstance(piece, str)
                total += _chars(piece)
        return start
