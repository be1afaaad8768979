"""One cached phrase as a file: a header with its length and checksum, a JSON part (its
text, engine, voice and the text marks the service sent), then 16-bit PCM.

A file cut short (a power cut before the rename never leaves one, but a disk can) or
changed fails its length or checksum check and is never played as noise.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from player.audio.ring import Frames
from player.synthesis.interface import Spoken, WordTiming

MAGIC = b"SKPC"
VERSION = 1
# magic, version, sample rate (Hz), frames, JSON part's bytes, SHA-256 of the rest.
_HEADER = struct.Struct("<4sBxxxIQI32s")
HEADER_SIZE = _HEADER.size


class CorruptEntry(ValueError):
    """A file that is not a whole cached phrase; the message says which check failed."""


@dataclass(frozen=True)
class Entry:
    text: str
    """The normalised text it speaks."""
    engine: str
    """See `SoundKey.engine`."""
    voice: str
    """The voice's name, for `cache list`."""
    samplerate: int
    """Hz."""
    pcm: npt.NDArray[np.int16]
    """Mono 16-bit samples."""
    spoken: tuple[Spoken, ...] = ()
    """The service's text marks, `start_ms` from the start of the audio."""

    @property
    def frames(self) -> int:
        return len(self.pcm)

    @property
    def duration_ms(self) -> int:
        return _duration_ms(self.frames, self.samplerate)

    def float_frames(self) -> Frames:
        return self.pcm.astype(np.float32) * np.float32(1.0 / 32768.0)


def to_pcm(frames: Frames) -> npt.NDArray[np.int16]:
    """Float frames as 16-bit samples (what the service sent was 16-bit already)."""
    scaled = np.clip(np.rint(frames * 32768.0), -32768, 32767)
    pcm: npt.NDArray[np.int16] = scaled.astype(np.int16)
    return pcm


@dataclass(frozen=True)
class Head:
    """An entry's header and description, without its audio (`cache list`)."""

    text: str
    engine: str
    voice: str
    samplerate: int
    frames: int

    @property
    def duration_ms(self) -> int:
        return _duration_ms(self.frames, self.samplerate)


def _duration_ms(frames: int, samplerate: int) -> int:
    return frames * 1000 // samplerate if samplerate else 0


def _unpack(header: bytes) -> tuple[int, int, int, bytes]:
    """(sample rate, frames, JSON part's bytes, checksum); raises CorruptEntry."""
    if len(header) < HEADER_SIZE:
        raise CorruptEntry(f"{len(header)} bytes, shorter than the header")
    magic, version, rate, frames, meta_size, digest = _HEADER.unpack_from(header)
    if magic != MAGIC or version != VERSION:
        raise CorruptEntry("not a phrase file of this version")
    return rate, frames, meta_size, digest


def read_head(file: BinaryIO) -> Head:
    """From an open entry file; raises CorruptEntry (its checksum is not checked: see
    `decode`)."""
    rate, frames, meta_size, _ = _unpack(file.read(HEADER_SIZE))
    text, engine, voice, _ = _describe(file.read(meta_size))
    return Head(text, engine, voice, rate, frames)


def _describe(meta_bytes: bytes) -> tuple[str, str, str, tuple[Spoken, ...]]:
    try:
        meta = json.loads(meta_bytes)
        spoken = tuple(_spoken(s) for s in meta["spoken"])
        return str(meta["text"]), str(meta["engine"]), str(meta["voice"]), spoken
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"unreadable description ({type(exc).__name__})") from None


def encode(entry: Entry) -> bytes:
    meta = json.dumps(
        {
            "text": entry.text,
            "engine": entry.engine,
            "voice": entry.voice,
            "spoken": [_spoken_dict(s) for s in entry.spoken],
        },
        ensure_ascii=False,
    ).encode()
    body = meta + entry.pcm.astype("<i2").tobytes()
    digest = hashlib.sha256(body).digest()
    header = _HEADER.pack(MAGIC, VERSION, entry.samplerate, entry.frames, len(meta), digest)
    return header + body


def decode(data: bytes) -> Entry:
    """Raises CorruptEntry."""
    rate, frames, meta_size, digest = _unpack(data)
    expected = HEADER_SIZE + meta_size + 2 * frames
    if len(data) != expected:
        raise CorruptEntry(f"{len(data)} bytes where its header says {expected}")
    body = memoryview(data)[HEADER_SIZE:]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry("checksum mismatch")
    text, engine, voice, spoken = _describe(bytes(body[:meta_size]))
    pcm = np.frombuffer(data, dtype="<i2", count=frames, offset=HEADER_SIZE + meta_size)
    return Entry(text, engine, voice, rate, pcm.astype(np.int16), spoken)


def _spoken_dict(spoken: Spoken) -> dict[str, object]:
    return {
        "text": spoken.text,
        "start_ms": spoken.start_ms,
        "words": [[w.word, w.start_ms, w.length_ms] for w in spoken.words],
    }


def _spoken(raw: dict[str, object]) -> Spoken:
    words = raw.get("words", [])
    if not isinstance(words, list):
        raise TypeError("words")
    return Spoken(
        text=str(raw["text"]),
        start_ms=int(str(raw["start_ms"])),
        words=tuple(WordTiming(str(w), int(s), int(n)) for w, s, n in words),
    )
