"""What every way of synthesising shares: text pieces in, PCM frames (and the text they
speak) out.

A `Synthesis` takes an utterance's pieces, text ending in whitespace or `FORCE`, and
hands each chunk of audio to a `Sink` as it arrives. The SpeechKit client, the local
synthesizer's process and the fallback between them all implement it, so the playback
worker never knows which one speaks.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from player import limits
from player.audio.ring import Frames
from player.config import VoiceSettings


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


SCALE = 100
"""RATE, PITCH and VOLUME in a `VoiceChoice` run from -SCALE to SCALE (speech-dispatcher's
scale): rate and pitch 0, and volume SCALE, are the configured voice's own (as they are
speech-dispatcher's defaults)."""
RATE_BASE = 3.0
"""Speed at RATE +100 (and 1/RATE_BASE at -100): SpeechKit's widest, 0.1 to 3.0."""
PITCH_HZ = 2.0
"""Hz of pitch shift per PITCH step: +-200 Hz at the ends."""
LUFS_PER_STEP = 0.15
"""LUFS per VOLUME step below the configured loudness: 30 LUFS quieter at -100."""
DEFAULT_LUFS, DEFAULT_PEAK = -19.0, 0.7
"""SpeechKit's own loudness targets, where the config names none."""


@dataclass(frozen=True)
class VoiceChoice:
    """What one utterance asks of the voice beside the configured one: a voice by name,
    and rate, pitch and volume on speech-dispatcher's -100..100 scale (see SCALE)."""

    voice: str = ""
    """A SpeechKit (or local) voice's name; empty for the configured one."""
    role: str = ""
    """The voice's role; empty for the configured one (or the voice's default)."""
    rate: int = 0
    pitch: int = 0
    volume: int = SCALE

    def applied(self, voice: VoiceSettings) -> VoiceSettings:
        """The configured ``voice`` as this choice changes it, within SpeechKit's limits."""
        speed = voice.speed * RATE_BASE ** (self.rate / SCALE)
        pitch = voice.pitch_shift + PITCH_HZ * self.pitch
        volume = voice.volume
        if self.volume != SCALE:
            volume = _quieter(voice, SCALE - self.volume)
        changed = dataclasses.replace(
            voice,
            speed=round(min(max(speed, limits.SPEED[0]), limits.SPEED[1]), 3),
            pitch_shift=min(max(pitch, limits.PITCH_SHIFT_HZ[0]), limits.PITCH_SHIFT_HZ[1]),
            volume=volume,
        )
        if self.voice and self.voice != voice.voice:
            # Another voice's roles differ: its own default, unless one is asked for.
            changed = dataclasses.replace(changed, voice=self.voice, role=self.role)
        elif self.role:
            changed = dataclasses.replace(changed, role=self.role)
        return changed


def _quieter(voice: VoiceSettings, steps: int) -> float:
    """The loudness target ``steps`` (0..200) below the configured one."""
    if voice.loudness == "MAX_PEAK":
        base = DEFAULT_PEAK if voice.volume is None else voice.volume
        return round(max(base * (1 - steps / (2 * SCALE)), 0.01), 3)
    base = DEFAULT_LUFS if voice.volume is None else voice.volume
    return round(max(base - LUFS_PER_STEP * steps, limits.VOLUME_LUFS[0]), 2)


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
    """Speaks one utterance's pieces into a sink; raises SynthesisError when it cannot.
    ``choice``: what the utterance asks of the configured voice (None: nothing)."""

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult: ...


class Recall(Protocol):
    """Plays a whole text's audio from somewhere it was kept, without synthesising it."""

    async def recall(
        self,
        text: str,
        sink: Sink,
        found: Callable[[], None],
        choice: VoiceChoice | None = None,
    ) -> CallResult | None:
        """The result once its audio was passed to ``sink``; None (and nothing passed)
        when there is none kept for it. ``found`` is called before anything is passed."""
