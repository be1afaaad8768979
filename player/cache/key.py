"""What a cached sound is told apart by: everything that changes how a text sounds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from player.config import VoiceSettings


def normal_text(text: str) -> str:
    """The text as the cache compares it: runs of whitespace as one space, none around."""
    return " ".join(text.split())


@dataclass(frozen=True)
class SoundKey:
    text: str
    """The text sent for synthesis, whitespace normalised (`normal_text`)."""
    engine: str
    """Who synthesised it: "speechkit:HOST:PORT" for an endpoint, "piper:MODEL" for the
    local synthesizer's voice model."""
    voice: VoiceSettings
    """Voice, role, speed, volume, pitch shift and loudness."""
    samplerate: int
    """Hz of the audio (the output device's rate)."""

    def digest(self) -> str:
        """A file name for it: SHA-256 over all of it, hex."""
        fields = {
            "text": self.text,
            "engine": self.engine,
            "voice": dataclasses.asdict(self.voice),
            "samplerate": self.samplerate,
        }
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()
