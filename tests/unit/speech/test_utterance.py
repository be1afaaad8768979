import asyncio

import pytest

from player.config import StreamSettings
from player.errors import TextError
from player.speech.utterance import Utterance
from player.synthesis.interface import FORCE, Piece

TIMEOUT = 5.0
# The pause is shorter than any test's own steps, and idle closing is out of the way.
QUICK = StreamSettings(pause_ms=30, idle_close_s=3600)


async def next_piece(utterance: Utterance) -> Piece | None:
    """The next piece the synthesis call would send; None once the text has ended."""
    return await asyncio.wait_for(anext(utterance.pieces(), None), TIMEOUT)


def queued(utterance: Utterance) -> list[Piece | None]:
    """Everything queued so far, without waiting."""
    items: list[Piece | None] = list(utterance._log[utterance._next :])
    utterance._next = len(utterance._log)
    if utterance._closed:
        items.append(None)
    return items


async def test_tokens_are_joined_into_words_each_ending_with_a_space():
    utterance = Utterance(QUICK)
    for token in ["Hel", "lo", " wor", "ld", ", how", " are"]:
        utterance.feed(token)
    assert queued(utterance) == ["Hello ", "world, ", "how "]
    utterance.close()
    assert queued(utterance) == ["are ", None]


async def test_a_sentence_end_forces_synthesis_at_once():
    utterance = Utterance(QUICK)
    utterance.feed("It is late. ")
    utterance.feed("Dr. ")
    utterance.feed("Who")
    assert queued(utterance) == ["It is late. ", FORCE, "Dr. "]


async def test_a_pause_sends_the_held_word_and_forces_synthesis():
    utterance = Utterance(QUICK)
    utterance.feed("Thinking about it")
    assert await next_piece(utterance) == "Thinking about "
    # Nothing more comes: after the pause the held word goes out, then the force.
    assert await next_piece(utterance) == "it "
    assert await next_piece(utterance) is FORCE
    utterance.feed(" more")
    assert await next_piece(utterance) == "more "
    assert await next_piece(utterance) is FORCE


async def test_a_pause_with_nothing_new_sends_nothing():
    utterance = Utterance(QUICK)
    utterance.feed("Done. ")
    assert queued(utterance) == ["Done. ", FORCE]
    utterance.feed(" ")  # input, but no new text
    await asyncio.sleep(QUICK.pause_ms / 1000 * 3)  # three pauses' worth of nothing
    assert queued(utterance) == []


async def test_an_idle_input_is_closed_and_later_text_refused_with_the_reason():
    utterance = Utterance(StreamSettings(pause_ms=10_000, idle_close_s=0.05))
    utterance.feed("Half a thou")
    assert await next_piece(utterance) == "Half a "
    assert await next_piece(utterance) == "thou "
    assert await next_piece(utterance) is None  # the text has ended
    assert utterance.idle_closed
    with pytest.raises(TextError, match=r"closed after 0.05 s without text"):
        utterance.feed("ght")


async def test_the_end_of_the_text_needs_no_force():
    utterance = Utterance(QUICK)
    utterance.feed("Last words")
    utterance.close()
    assert queued(utterance) == ["Last ", "words ", None]
    with pytest.raises(TextError, match="already ended"):
        utterance.feed("more")


def feed_words(utterance: Utterance, text: str) -> None:
    """``text`` a word at a time, as an LLM's tokens come."""
    for word in text.split(" "):
        utterance.feed(word + " ")


async def test_after_a_short_first_sentence_the_next_goes_out_clause_first():
    utterance = Utterance(QUICK)
    feed_words(utterance, "Sure. The museum opens at nine in the morning and closes at six.")
    pieces = queued(utterance)
    assert pieces[:2] == ["Sure. ", FORCE]
    # The clause before "and" is spoken while "Sure." plays; the rest is one sentence.
    clause = pieces.index(FORCE, 2)
    assert "".join(str(p) for p in pieces[2:clause]) == "The museum opens at nine in the morning "
    assert pieces[clause + 1] == "and "
    assert pieces.count(FORCE) == 3


async def test_a_comma_ends_that_first_clause_too():
    utterance = Utterance(QUICK)
    feed_words(utterance, "Yes! On Thursdays it stays open late, until nine at night.")
    pieces = queued(utterance)
    clause = pieces.index(FORCE, 2)
    assert pieces[clause - 1] == "late, "
    assert pieces.count(FORCE) == 3


async def test_a_clause_too_short_to_sound_whole_waits_for_more():
    utterance = Utterance(QUICK)
    feed_words(utterance, "Sure. It opens, and then it closes at six in the evening.")
    pieces = queued(utterance)
    # "It opens, " is under MIN_CLAUSE_CHARS: the sentence goes on whole.
    assert pieces.count(FORCE) == 2


async def test_after_a_longer_first_sentence_sentences_go_whole():
    utterance = Utterance(QUICK)
    feed_words(utterance, "The museum is open today. It opens at nine in the morning and closes.")
    assert queued(utterance).count(FORCE) == 2


async def test_text_that_comes_whole_is_spoken_in_whole_sentences():
    utterance = Utterance(QUICK)
    utterance.feed("Sure. The museum opens at nine in the morning and closes at six. ")
    assert queued(utterance) == [
        "Sure. ", FORCE, "The museum opens at nine in the morning and closes at six. ", FORCE
    ]  # fmt: skip
