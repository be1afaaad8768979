"""Utterances longer than one call may carry, spoken as consecutive calls.

SpeechKit takes at most `limits.TEXT_PER_CALL` characters in one StreamSynthesis call. An
utterance's pieces are read until the next one would not fit; that call then ends (its
half-close flushes what it holds) and the next call starts with the piece that did not
fit. Late in a call's budget it ends at the first sentence end (a `FORCE`), so calls
usually join where the voice pauses anyway. Each call starts as soon as the one before
has delivered its last audio, while that audio is still in the ring ahead of the
listener, so a join is as seamless as two sentences inside one call.

To everything downstream it is one call: audio goes to the same sink, and the text
positions of later calls are moved by the audio the earlier ones delivered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from player import limits
from player.audio.ring import Frames
from player.synthesis.interface import (
    FORCE,
    CallResult,
    Piece,
    Sink,
    Spoken,
    Synthesis,
    VoiceChoice,
)

SENTENCE_END_MARGIN = 1000
"""Characters: once a call holds more than its limit less this, it ends at the next
sentence end rather than risk a cut in the middle of a sentence later."""


class SplitLongText:
    """A `Synthesis` that speaks any length of text through `inner`, one call per
    `limit` characters at most."""

    def __init__(self, inner: Synthesis, samplerate: int, limit: int = limits.TEXT_PER_CALL):
        self._inner = inner
        self._samplerate = samplerate
        self._limit = limit

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        budget = _Budget(pieces, self._limit)
        results: list[CallResult] = []
        frames = 0
        while True:
            offset_ms = frames * 1000 // self._samplerate
            result = await self._inner.synthesize(budget.call(), _Shifted(sink, offset_ms), choice)
            results.append(result)
            frames += result.frames
            if budget.ended:
                break
        return CallResult(
            frames=frames,
            request_id=results[0].request_id,
            first_audio_delay=results[0].first_audio_delay,
            fallback=any(r.fallback for r in results),
            resumed=any(r.resumed for r in results),
        )


class _Budget:
    """One source of pieces, dealt out to consecutive calls that each stay in budget."""

    def __init__(self, source: AsyncIterator[Piece], limit: int) -> None:
        self._source = source
        self._limit = limit
        self._carry: Piece | None = None
        self.ended = False
        """The source has no more pieces: no further call is needed."""

    async def call(self) -> AsyncIterator[Piece]:
        """The pieces of the next call."""
        used = 0
        while True:
            piece = await self._next()
            if piece is None:
                return
            if piece is FORCE:
                yield piece
                if used > self._limit - SENTENCE_END_MARGIN:
                    # Look ahead, so a text that ends here does not open an empty call.
                    self._carry = await self._next()
                    return
                continue
            assert isinstance(piece, str)
            if used + len(piece) > self._limit:
                if used:
                    self._carry = piece
                    return
                piece, rest = _cut(piece, self._limit)
                self._carry = rest or None
            used += len(piece)
            yield piece

    async def _next(self) -> Piece | None:
        if self._carry is not None:
            piece, self._carry = self._carry, None
            return piece
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            self.ended = True
            return None


def _cut(piece: str, room: int) -> tuple[str, str]:
    """A piece too long for a whole call, cut at its last space that fits (a word
    boundary), or at `room` if it has none; both halves end as pieces must, in a space."""
    space = piece.rfind(" ", 0, room)
    at = space + 1 if space > 0 else room - 1
    head, rest = piece[:at], piece[at:]
    return (head if head.endswith(" ") else head + " "), rest


class _Shifted:
    """A later call's output: its text positions moved behind the earlier calls' audio."""

    def __init__(self, sink: Sink, offset_ms: int) -> None:
        self._sink = sink
        self._offset = offset_ms

    async def audio(self, frames: Frames) -> None:
        await self._sink.audio(frames)

    def spoken(self, spoken: Spoken) -> None:
        if self._offset:
            spoken = dataclasses.replace(
                spoken,
                start_ms=spoken.start_ms + self._offset,
                words=tuple(
                    dataclasses.replace(w, start_ms=w.start_ms + self._offset) for w in spoken.words
                ),
            )
        self._sink.spoken(spoken)

    async def withdraw(self, frames: int) -> int:
        return await self._sink.withdraw(frames)
