"""player.speech.sentences: cutting streamed text into sentences for the local voice."""

from __future__ import annotations

import pytest

from player.speech.sentences import (
    MAX_SENTENCE_CHARS,
    SentenceSplitter,
    ends_clause,
    starts_clause,
)


def split(pieces: list[str], max_chars: int = MAX_SENTENCE_CHARS) -> tuple[list[list[str]], str]:
    """What each feed returned, and what flush returned at the end."""
    splitter = SentenceSplitter(max_chars)
    fed = [splitter.feed(piece) for piece in pieces]
    return fed, splitter.flush()


def test_a_sentence_is_complete_only_once_whitespace_follows():
    splitter = SentenceSplitter()

    assert splitter.feed("Hello.") == []
    assert splitter.pending == "Hello."
    assert splitter.feed(" Wor") == ["Hello."]
    assert splitter.pending == " Wor"


@pytest.mark.parametrize(
    ("pieces", "fed", "rest"),
    [
        (["Hel", "lo. Wor", "ld! ", "Next"], [[], ["Hello."], ["World!"], []], "Next"),
        (["Hello.\nWorld.\tNext"], [["Hello.", "World."]], "Next"),
        (
            ["Why? Wait\u2026 Really?! Stop... Go"],
            [["Why?", "Wait\u2026", "Really?!", "Stop..."]],
            "Go",
        ),
        (
            ['He said "Stop." Then (see above.) Done.\u00bb \u201cOk.\u201d Fine'],
            [['He said "Stop."', "Then (see above.)", "Done.\u00bb", "\u201cOk.\u201d"]],
            "Fine",
        ),
        (["Pi is 3.14 today. "], [["Pi is 3.14 today."]], ""),
        (["The answer is no. Then go. "], [["The answer is no.", "Then go."]], ""),
        (["Mr. Smith met Dr. Jones. Then"], [["Mr. Smith met Dr. Jones."]], "Then"),
        (
            ["Mr.", " Smith", " came, e.g. by St. Paul. "],
            [[], [], ["Mr. Smith came, e.g. by St. Paul."]],
            "",
        ),
    ],
)
def test_sentences(pieces, fed, rest):
    assert split(pieces) == (fed, rest)


@pytest.mark.parametrize(
    ("text", "first", "rest"),
    [
        # cut after the last comma (or other clause mark) within max_chars
        ("one, two three; four five six seven", "one, two three;", "four five six seven"),
        # no clause mark: cut at the last space
        ("aaaa bbbb cccc dddd eeee", "aaaa bbbb cccc dddd", "eeee"),
        # not even a space: cut at max_chars
        ("x" * 25, "x" * 20, "x" * 5),
    ],
)
def test_a_run_on_text_is_cut_at_max_chars(text, first, rest):
    splitter = SentenceSplitter(max_chars=20)

    assert splitter.feed(text) == [first]
    assert splitter.flush() == rest


def test_a_long_text_is_cut_into_pieces_no_longer_than_max_chars():
    splitter = SentenceSplitter(max_chars=20)
    words = [f"w{i}" for i in range(40)]

    sentences = [s for word in words for s in splitter.feed(word + " ")]
    sentences.append(splitter.flush())

    assert all(0 < len(s) <= 20 for s in sentences)
    assert " ".join(sentences).split() == words


def test_flush_returns_the_rest_and_empties_the_buffer():
    splitter = SentenceSplitter()
    splitter.feed("Done. And then  ")

    assert splitter.flush() == "And then"
    assert splitter.pending == ""
    assert splitter.flush() == ""
    assert splitter.feed("New. ") == ["New."]


@pytest.mark.parametrize("max_chars", [MAX_SENTENCE_CHARS, 20])
def test_whitespace_alone_yields_nothing(max_chars):
    assert split([" \n\t", " " * 50, "\n"], max_chars) == ([[], [], []], "")


def test_clause_marks_and_clause_words():
    assert ends_clause("late, ")
    assert ends_clause("this: ")
    assert not ends_clause("late ")
    assert starts_clause("and then ")
    assert starts_clause("Или ")
    assert not starts_clause("android ")
