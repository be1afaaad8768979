"""The LINEAR16 decoder: bytes to float frames, an odd byte carried over."""

import struct

import numpy as np

from player.synthesis.pcm import Linear16Decoder


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
