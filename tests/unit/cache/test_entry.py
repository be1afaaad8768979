"""A cached phrase's file: what is written reads back the same, and a file that is not
whole is refused rather than played as noise."""

from __future__ import annotations

import numpy as np
import pytest

from player.cache.entry import HEADER_SIZE, CorruptEntry, Entry, decode, encode, to_pcm
from player.synthesis.interface import Spoken, WordTiming

pytestmark = pytest.mark.unit


def _entry() -> Entry:
    pcm = (np.sin(np.arange(4800) / 8) * 20000).astype(np.int16)
    marks = (
        Spoken("Hello there. ", 0, (WordTiming("Hello", 0, 300), WordTiming("there", 300, 200))),
        Spoken("Привет. ", 60),
    )
    return Entry("Hello there. Привет.", "speechkit:tts:443", "marina", 48000, pcm, marks)


def test_an_entry_reads_back_as_it_was_written() -> None:
    entry = _entry()
    back = decode(encode(entry))
    assert (back.text, back.engine, back.voice, back.samplerate) == (
        entry.text,
        entry.engine,
        entry.voice,
        entry.samplerate,
    )
    assert np.array_equal(back.pcm, entry.pcm)
    assert back.spoken == entry.spoken
    assert back.duration_ms == 100


@pytest.mark.parametrize("cut", [1, 2, 1000, HEADER_SIZE + 3])
def test_a_file_cut_short_is_refused(cut: int) -> None:
    data = encode(_entry())
    with pytest.raises(CorruptEntry, match="bytes"):
        decode(data[:-cut] if cut < len(data) else data[:1])


@pytest.mark.parametrize("where", [HEADER_SIZE + 2, -1, -5000])
def test_a_changed_byte_fails_the_checksum(where: int) -> None:
    data = bytearray(encode(_entry()))
    data[where] ^= 0x01
    with pytest.raises(CorruptEntry, match="checksum"):
        decode(bytes(data))


def test_something_else_entirely_is_refused() -> None:
    with pytest.raises(CorruptEntry, match="not a phrase file"):
        decode(b"RIFF" + bytes(200))


def test_float_frames_become_16_bit_samples_exactly_and_clipped() -> None:
    samples = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    frames = samples.astype(np.float32) * np.float32(1 / 32768)
    assert np.array_equal(to_pcm(frames), samples)
    assert list(to_pcm(np.array([1.5, -1.5], dtype=np.float32))) == [32767, -32768]
