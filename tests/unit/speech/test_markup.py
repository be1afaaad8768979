"""What reaches the service: markdown read as a person would, markup and control
characters never, whole or streamed token by token."""

from __future__ import annotations

import random
import re

import pytest

from player.config import StreamSettings
from player.config.settings import TextSettings
from player.speech.markup import HOLD_CHARS, TextCleaner, clean, neutralise, speakable
from player.speech.utterance import Utterance, worth_starting
from player.synthesis.interface import FORCE, Piece

# No pause timer fires during a test; idle closing is out of the way.
STILL = StreamSettings(pause_ms=10_000, idle_close_s=3600)
TTS = TextSettings(markup="tts")
# What SpeechKit would take as markup, or what must never be sent at all.
MARKUP = re.compile(r"[+*]|<\[|\]>|\[\[|\]\]")
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# An LLM's answers, and what "plain" sends for them (whitespace runs are one space).
LLM = [
    ("**Bold** and *italic* and __strong__ and _it_", "Bold and italic and strong and it"),
    ("~~old~~ new, snake_case stays", "old new, snake_case stays"),
    ("# Results\nWe won.", "Results. We won."),
    ("## Setup ##\nRun it.", "Setup. Run it."),
    ("## Steps:\nFirst", "Steps: First"),
    ("- apples\n- pears\n* plums\n+ figs", "apples. pears. plums. figs"),
    ("1. Install it.\n2) Run it\n10. Done", "Install it. Run it. Done"),
    ("- [x] written\n- [ ] tested", "written. tested"),
    ("Run `make test` now.", "Run make test now."),
    (
        "Like this:\n```python\nx = 1\ny = 2\n```\nThat is all.",
        "Like this: x = 1. y = 2. That is all.",
    ),
    ("~~~\ncode\n~~~", "code."),
    ("See [the docs](https://example.org/docs) first.", "See the docs first."),
    ("A [wiki](https://en.wikipedia.org/wiki/C_(language)) link", "A wiki link"),
    ("![a cat](cat.png) sleeps", "a cat sleeps"),
    ("Go to https://example.org/a_b now.", "Go to https://example.org/a_b now."),
    ("> Quoted wisdom\n> continues", "Quoted wisdom continues"),
    ("Above\n\n---\n\nBelow", "Above. Below"),
    ("**Summary**\n\nAll good.", "Summary. All good."),
    ("| Name | Age |\n|------|:---:|\n| Bob | 42 |", "Name, Age. Bob, 42"),
    ("C++ beats C# and F#, says g++.", "C plus plus beats C sharp and F sharp, says g plus plus."),
    ("2+2=4 and 3 + 4 is 7", "2 plus 2=4 and 3 plus 4 is 7"),
    ("Call +7 999 123", "Call plus 7 999 123"),
    ("Grade A+, Disney+ and 18+", "Grade A plus, Disney plus and 18 plus"),
    ("x+y, 2*3", "x plus y, 2 times 3"),
    ("rec+ord and \u0437\u0430\u043c+\u043e\u043a", "record and \u0437\u0430\u043c\u043e\u043a"),
    ("Wait sil<[300]> now <[small]> go", "Wait now go"),
    ("Say [[tomato]] twice", "Say tomato twice"),
    ("Half [[open and <[ half", "Half open and half"),
]


def norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("text", "sent"), LLM)
def test_markdown_is_read_as_a_person_would(text: str, sent: str) -> None:
    assert norm(neutralise(text)) == sent
    assert not MARKUP.search(neutralise(text))


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("\x1b[1;31mred\x1b[0m alert", "red alert"),
        ("\x1b]0;window title\x07after", "after"),
        ("\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\ text", "link text"),
        ("\x9b31mred", "red"),
        ("a\x00b\x07c\x7fd\x85e", "abcd e"),
        ("tab\there\r\nline\rbreak\u2028end", "tab here line break end"),
        ("\u202eevil\u202c \u2066iso\u2069 \u200fmark\u200e \ufeffbom", "evil iso mark bom"),
    ],
)
def test_control_characters_escapes_and_bidi_never_reach_the_service(text: str, sent: str) -> None:
    for markup in ("plain", "tts"):
        cleaned = clean(text, markup)
        assert norm(cleaned) == sent, markup
        assert not CONTROLS.search(cleaned)
        assert "\n" not in cleaned


def test_tts_mode_passes_speechkit_markup_through() -> None:
    text = "Hello sil<[300]> w+orld, **really** <[small]> [[t o m]] C++ 2+2"
    assert clean(text, "tts") == text
    assert clean("**bo\x1b[0mld**\n- item", "tts") == "**bold** - item"


@pytest.mark.parametrize(
    ("text", "has_speech"),
    [
        ("**", False),
        ("- ", False),
        ("# ", False),
        ("```\n```", False),
        ("--- *** ...", False),
        ("sil<[500]> <[small]>", False),
        ("\x1b[31m\u202e", False),
        ("1. ", False),
        ("a", True),
        ("**b", True),
        ("42", True),
    ],
)
def test_speakable_means_a_letter_or_digit_once_cleaned(text: str, has_speech: bool) -> None:
    assert speakable(text) is has_speech
    assert worth_starting(text, TextSettings()) is has_speech


def test_a_line_marker_is_speech_in_the_middle_of_a_text_or_in_tts_mode() -> None:
    assert speakable("1. ", lines=False)
    assert worth_starting("1. ", TTS)
    assert worth_starting("*" * 5001, TextSettings())  # too long: let feeding refuse it


# --- Streamed ----------------------------------------------------------------------------


def pieces_of(utterance: Utterance) -> list[Piece]:
    """Everything queued so far."""
    items = list(utterance._log[utterance._next :])
    utterance._next = len(utterance._log)
    return items


def text_of(pieces: list[Piece]) -> str:
    return "".join(p for p in pieces if isinstance(p, str))


async def stream(tokens: list[str], text: TextSettings | None = None) -> list[Piece]:
    utterance = Utterance(STILL, text=text)
    for token in tokens:
        utterance.feed(token)
    utterance.close()
    return pieces_of(utterance)


@pytest.mark.parametrize(
    ("tokens", "sent"),
    [
        (["**bo", "ld**", " move"], "bold move"),
        (["*", "*", "bold", "*", "*", " move"], "bold move"),
        (["See [the", " do", "cs](ht", "tps://x.org/a", ") now"], "See the docs now"),
        (["Wait sil<[", "300", "]> now"], "Wait now"),
        (["2", "+", "2 is 4"], "2 plus 2 is 4"),
        (["C+", "+ code"], "C plus plus code"),
        (["\x1b", "[3", "1mred", "\x1b[", "0m text"], "red text"),
        (["\x1b]0;a ti", "tle\x07vis", "ible"], "visible"),
        (["#", "# Ti", "tle", "\n", "- on", "e\n", "- two"], "Title. one. two"),
        (["| a ", "| b |", "\n|--", "-|---|\n", "| c | d |"], "a, b. c, d"),
        (["```", "py", "thon\nx", " = 1\n`", "``\nDone."], "x = 1. Done."),
        (["line\r", "\nnext"], "line next"),
    ],
)
async def test_constructs_split_over_tokens_are_read_whole(tokens: list[str], sent: str) -> None:
    pieces = await stream(tokens)
    assert norm(text_of(pieces)) == sent
    assert all(p is FORCE or p.endswith(" ") for p in pieces)


async def test_words_still_go_as_soon_as_the_next_one_starts() -> None:
    utterance = Utterance(STILL)
    utterance.feed("**Hel")
    assert pieces_of(utterance) == []
    utterance.feed("lo** wor")
    assert pieces_of(utterance) == ["Hello "]
    utterance.feed("ld. ")
    assert pieces_of(utterance) == ["world. ", FORCE]  # a sentence end goes at once


async def test_a_link_is_held_until_it_closes() -> None:
    utterance = Utterance(STILL)
    utterance.feed("Read [the manual for")
    assert pieces_of(utterance) == ["Read "]
    utterance.feed(" it](https://example.org/manual) today")
    assert pieces_of(utterance) == ["the manual for it "]


async def test_a_pause_lets_a_held_construct_go_without_markup() -> None:
    utterance = Utterance(StreamSettings(pause_ms=20, idle_close_s=3600))
    utterance.feed("Read [the man")
    anext_piece = utterance.pieces()
    assert await anext(anext_piece) == "Read "
    # The pause let it go: a single bracket is no markup, and is not read.
    assert await anext(anext_piece) == "[the man "
    assert await anext(anext_piece) is FORCE
    utterance.feed("ual](https://example.org/m) now")
    utterance.close()
    rest = [p async for p in anext_piece]
    assert norm(text_of(rest)) == "ual now"


async def test_an_unfinished_construct_is_given_up_after_hold_chars() -> None:
    utterance = Utterance(STILL)
    utterance.feed("Look [" + "word " * (HOLD_CHARS // 5 + 2))
    sent = text_of(pieces_of(utterance))
    assert sent.startswith("Look [word word ")
    assert not MARKUP.search(sent)


@pytest.mark.parametrize(("text", "sent"), LLM)
async def test_any_split_of_the_input_sends_what_the_whole_text_gives(text: str, sent: str) -> None:
    rng = random.Random(text)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12))))
        tokens = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert norm(text_of(await stream(tokens))) == sent, tokens


def test_no_markup_gets_through_whatever_the_cuts_and_pauses() -> None:
    rng = random.Random(7)
    for text, _ in LLM:
        for _ in range(50):
            cleaner, sent, i = TextCleaner(), [], 0
            while i < len(text):
                n = rng.randint(1, 5)
                sent.append(cleaner.feed(text[i : i + n]))
                i += n
                if rng.random() < 0.3:
                    sent.append(cleaner.flush())  # a pause in the input
            sent.append(cleaner.finish())
            # Pieces reach the service each ending in a space.
            assert not MARKUP.search(" ".join(sent)), (text, sent)


async def test_pieces_with_nothing_to_speak_are_never_sent() -> None:
    pieces = await stream(["Hello. ", "*** ", "`` ", "... ", "World."])
    assert pieces == ["Hello. ", FORCE, "World. "]


async def test_an_unspeakable_sentence_still_forces_what_came_before_it() -> None:
    utterance = Utterance(STILL, text=TTS)
    utterance.feed("Well ")
    utterance.feed("sil<[500]>. ")
    assert pieces_of(utterance) == ["Well ", FORCE]


async def test_an_utterance_of_markup_only_has_no_speech() -> None:
    utterance = Utterance(STILL)
    utterance.feed("sil")
    utterance.feed("<[300]> **")
    utterance.close()
    assert pieces_of(utterance) == []
    assert not utterance.has_speech


async def test_tts_mode_sends_markup_but_not_control_characters() -> None:
    pieces = await stream(["Sa", "y +", "aloud sil<[3", "00]> **now**\x1b[0m\u202e."], TTS)
    assert text_of(pieces) == "Say +aloud sil<[300]> **now**. "


async def test_tts_markup_cut_into_a_piece_of_its_own_goes_with_the_next_words() -> None:
    pieces = await stream(["Hello ", "sil<[300]> ", "world. ", "sil<[100]>. ", "Bye"], TTS)
    # A mark that ends a sentence has no words to go with: it is dropped.
    assert pieces == ["Hello ", "sil<[300]> world. ", FORCE, "Bye "]
