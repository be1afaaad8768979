"""What tells cached sounds apart: everything that changes the sound, and nothing else."""

from __future__ import annotations

import dataclasses

import pytest

from player.cache.key import SoundKey, normal_text
from player.config import VoiceSettings

pytestmark = pytest.mark.unit

BASE = SoundKey("Hello there.", "speechkit:tts.api.cloud.yandex.net:443", VoiceSettings(), 48000)


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(BASE, text="Hello there!"),
        dataclasses.replace(BASE, engine="piper:default"),
        dataclasses.replace(BASE, samplerate=44100),
        dataclasses.replace(BASE, voice=VoiceSettings(voice="alena")),
        dataclasses.replace(BASE, voice=VoiceSettings(role="friendly")),
        dataclasses.replace(BASE, voice=VoiceSettings(speed=1.1)),
        dataclasses.replace(BASE, voice=VoiceSettings(volume=-19.0)),
        dataclasses.replace(BASE, voice=VoiceSettings(pitch_shift=50.0)),
        dataclasses.replace(BASE, voice=VoiceSettings(loudness="MAX_PEAK")),
    ],
)
def test_whatever_changes_the_sound_changes_the_key(changed: SoundKey) -> None:
    assert changed.digest() != BASE.digest()


def test_the_same_sound_has_the_same_key() -> None:
    again = SoundKey("Hello there.", BASE.engine, VoiceSettings(), 48000)
    assert again.digest() == BASE.digest()
    assert len(BASE.digest()) == 64


def test_whitespace_is_compared_as_single_spaces() -> None:
    assert normal_text("  Hello \n there.\t") == "Hello there."
