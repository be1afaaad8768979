import struct

import numpy as np

from player.pcm import Linear16Decoder
from player.text import WordJoiner


def test_odd_chunks_carry_the_split_sample():
    samples = [0, 1, -1, 32767, -32768, 1234]
    data = struct.pack("<6h", *samples)
    decoder = Linear16Decoder()
    out = [decoder.decode(data[:3]), decoder.decode(data[3:4]), decoder.decode(data[4:])]
    assert [len(chunk) for chunk in out] == [1, 1, 4]
    joined = np.concatenate(out)
    assert (joined * 32768).round().astype(int).tolist() == samples
    assert decoder.pending == 0


def test_byte_by_byte_equals_whole():
    data = np.arange(-500, 500, dtype="<i2").tobytes()
    whole = Linear16Decoder().decode(data)
    decoder = Linear16Decoder()
    pieces = np.concatenate([decoder.decode(data[i : i + 1]) for i in range(len(data))])
    assert np.array_equal(whole, pieces)


def test_trailing_odd_byte_is_pending():
    decoder = Linear16Decoder()
    assert len(decoder.decode(b"\x01\x00\x02")) == 1
    assert decoder.pending == 1


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
