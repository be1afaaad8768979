"""player.synthesis.long_text: an utterance over one call's limit, as consecutive calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from player.audio.ring import Frames
from player.errors import SynthesisError
from player.synthesis.interface import (
    FORCE,
    CallResult,
    Piece,
    Sink,
    Spoken,
    VoiceChoice,
    WordTiming,
)
from player.synthesis.long_text import SENTENCE_END_MARGIN, SplitLongText

RATE = 8000
FRAMES_PER_CHAR = 8  # 1 ms of audio per character at RATE


class Calls:
    """An inner synthesis that records each call's pieces and speaks 1 ms per character,
    with a text chunk at the start of each piece's audio."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[Piece]] = []
        self._fail_on_call = fail_on_call

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        sent: list[Piece] = []
        self.calls.append(sent)
        if self._fail_on_call == len(self.calls):
            raise SynthesisError("the service went away")
        frames = 0
        async for piece in pieces:
            sent.append(piece)
            if isinstance(piece, str):
                sink.spoken(Spoken(piece, frames * 1000 // RATE, (WordTiming("w", 5, 1),)))
                await sink.audio(np.zeros(len(piece) * FRAMES_PER_CHAR, dtype=np.float32))
                frames += len(piece) * FRAMES_PER_CHAR
        return CallResult(frames, f"r{len(self.calls)}", 0.1, fallback=len(self.calls) == 2)


class Heard:
    def __init__(self) -> None:
        self.frames = 0
        self.texts: list[Spoken] = []

    async def audio(self, frames: Frames) -> None:
        self.frames += len(frames)

    def spoken(self, spoken: Spoken) -> None:
        self.texts.append(spoken)

    async def withdraw(self, frames: int) -> int:
        raise AssertionError("nothing here resumes a call")


async def pieces(*items: Piece) -> AsyncIterator[Piece]:
    for item in items:
        yield item


def sentences(count: int, length: int = 100) -> list[Piece]:
    """`count` sentences of `length` characters (with their space), each forced."""
    out: list[Piece] = []
    for n in range(count):
        text = f"Sentence {n:04d} " + "x" * (length - 16) + ". "
        out += [text[: length - 1] + " ", FORCE]
    return out


def texts(items: list[Piece]) -> list[str]:
    return [p for p in items if isinstance(p, str)]


async def test_a_text_over_the_limit_is_spoken_whole_in_calls_within_it() -> None:
    source = sentences(120)  # 12000 characters
    inner, heard = Calls(), Heard()
    result = await SplitLongText(inner, RATE).synthesize(pieces(*source), heard)
    assert len(inner.calls) == 3
    assert all(sum(map(len, texts(call))) <= 5000 for call in inner.calls)
    # Nothing lost, nothing twice, in order; every call but the last ends at a sentence end.
    assert [p for call in inner.calls for p in call] == source
    assert all(call[-1] is FORCE for call in inner.calls)
    assert result.frames == heard.frames == 12000 * FRAMES_PER_CHAR
    assert (result.request_id, result.first_audio_delay, result.fallback) == ("r1", 0.1, True)


async def test_later_calls_text_positions_follow_the_audio_before_them() -> None:
    inner, heard = Calls(), Heard()
    await SplitLongText(inner, RATE, limit=300).synthesize(pieces(*sentences(6)), heard)
    assert len(inner.calls) > 1
    # One spoken per piece, each where its audio starts in the whole utterance.
    starts = [s.start_ms for s in heard.texts]
    assert starts == [n * 100 for n in range(6)]
    assert [s.words[0].start_ms for s in heard.texts] == [n * 100 + 5 for n in range(6)]


async def test_a_short_text_is_one_call_and_no_empty_one() -> None:
    inner, heard = Calls(), Heard()
    source = sentences(3)
    await SplitLongText(inner, RATE).synthesize(pieces(*source), heard)
    assert inner.calls == [source]


async def test_a_text_ending_at_a_late_sentence_end_opens_no_empty_call() -> None:
    inner = Calls()
    limit = 600
    count = (limit - SENTENCE_END_MARGIN // 10) // 100  # ends just past the margin
    source = sentences(count)
    await SplitLongText(inner, RATE, limit=limit).synthesize(pieces(*source), Heard())
    assert all(texts(call) for call in inner.calls)
    assert [p for call in inner.calls for p in call] == source


async def test_a_piece_longer_than_a_call_is_cut_at_a_word() -> None:
    inner = Calls()
    words = "word " * 30  # 150 characters, no sentence end
    await SplitLongText(inner, RATE, limit=64).synthesize(pieces(words), Heard())
    sent = [texts(call) for call in inner.calls]
    assert all(sum(map(len, call)) <= 64 for call in sent)
    assert all(piece.endswith(" ") for call in sent for piece in call)
    assert "".join(p for call in sent for p in call).split() == words.split()


async def test_a_failing_later_call_fails_the_utterance() -> None:
    inner = Calls(fail_on_call=2)
    with pytest.raises(SynthesisError, match="went away"):
        await SplitLongText(inner, RATE, limit=300).synthesize(pieces(*sentences(6)), Heard())
    assert len(inner.calls) == 2
