"""What every way of synthesising shares: text pieces in, PCM frames (and the text they
speak) out.

A `Synthesis` takes an utterance's pieces, text ending in whitespace or `FORCE`, and
hands each chunk of audio to a `Sink` as it arrives. The SpeechKit client, the local
synthesizer's process and the fallback between them all implement it, so the playback
worker never knows which one speaks.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from player.audio.ring import Frames


class Force(enum.Enum):
    """Among text pieces: have the service synthesise what it was sent so far, now."""

    SYNTHESIS = "force_synthesis"


FORCE = Force.SYNTHESIS
Piece = str | Force
"""What a synthesis call sends after its options: text (ending in a space) or FORCE."""


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_ms: int
    """From the start of the utterance's audio, milliseconds."""
    length_ms: int


@dataclass(frozen=True)
class Spoken:
    """A response's text_chunk: the text its audio, from start_ms on, speaks."""

    text: str
    start_ms: int
    """From the start of the call's audio, milliseconds."""
    words: tuple[WordTiming, ...] = ()


class Sink(Protocol):
    """Where a call's output goes."""

    async def audio(self, frames: Frames) -> None: ...

    def spoken(self, spoken: Spoken) -> None:
        """Called after the audio this text speaks (from its start) was passed to
        ``audio``: the same response's, or for text sent ahead of its audio, the next."""

    async def withdraw(self, frames: int) -> int:
        """The last ``frames`` frames passed to ``audio`` are not to be played, nor the
        text marked inside them: a broken call's half-received sentence, asked for again.
        Returns how many were taken back; the rest had already been heard and stay."""


@dataclass(frozen=True)
class CallResult:
    frames: int
    """Frames of audio received and kept (not withdrawn)."""
    request_id: str
    """The server's ``x-request-id``, if it sent one."""
    first_audio_delay: float | None
    """Seconds from the call's start to the first audio chunk."""
    fallback: bool = False
    """The local synthesizer spoke it because the configured endpoint was unreachable."""
    resumed: bool = False
    """A call broke off with a transient error and a new one spoke the rest."""
    cached: bool = False
    """Played from the phrase cache: no call was made."""


class Synthesis(Protocol):
    """Speaks one utterance's pieces into a sink; raises SynthesisError when it cannot."""

    async def synthesize(self, pieces: AsyncIterator[Piece], sink: Sink) -> CallResult: ...


class Recall(Protocol):
    """Plays a whole text's audio from somewhere it was kept, without synthesising it."""

    async def recall(self, text: str, sink: Sink, found: Callable[[], None]) -> CallResult | None:
        """The result once its audio was passed to ``sink``; None (and nothing passed)
        when there is none kept for it. ``found`` is called before anything is passed."""
