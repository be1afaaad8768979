"""Cutting streamed text at word boundaries."""

from player.speech.text import WordJoiner


def test_joiner_holds_a_word_until_it_is_complete():
    joiner = WordJoiner()
    assert joiner.feed("Hel") == ""
    assert joiner.feed("lo wor") == "Hello "
    assert joiner.feed("ld. ") == "world. "
    assert joiner.feed("Bye") == ""
    assert joiner.finish() == "Bye "
    assert joiner.finish() == ""


def test_joiner_pieces_always_end_with_a_space():
    joiner = WordJoiner()
    sent = [joiner.feed(p) for p in ["One two\n", "three", "   ", "four"]] + [joiner.finish()]
    sent = [piece for piece in sent if piece]
    assert sent == ["One two ", "three ", "four "]
    assert "".join(sent).split() == ["One", "two", "three", "four"]


def test_joiner_ignores_whitespace_only_text():
    joiner = WordJoiner()
    assert joiner.feed("  \n ") == ""
    assert joiner.finish() == ""
