"""SpeechKit v3's documented limits, defined once: the config checks, the utterances the
daemon sends (speech layer) and our SpeechKit-compatible servers all read them here."""

from __future__ import annotations

TEXT_PER_CALL = 5000
"""Characters of text one StreamSynthesis call may carry."""

RATE_HZ = (8000, 48000)
"""Sample rates of raw LINEAR16_PCM the service sends, inclusive, hertz."""
WAV_RATE_HZ = 22050
"""What the service sends in a WAV container, and when no output_audio_spec is given."""

SPEED = (0.1, 3.0)
"""Speech rate multiplier, inclusive (0 on the wire means the default, 1.0)."""
PITCH_SHIFT_HZ = (-1000.0, 1000.0)
"""Pitch shift, inclusive, hertz."""
VOLUME_MAX_PEAK = (0.0, 1.0)
"""Volume with MAX_PEAK normalisation: above 0, up to 1 inclusive."""
VOLUME_LUFS = (-145.0, 0.0)
"""Volume with LUFS normalisation: from -145 inclusive, below 0."""

VOICE_LANGUAGES = {
    **dict.fromkeys(
        (
            "alena", "filipp", "ermil", "jane", "omazh", "zahar", "dasha", "julia", "lera",
            "masha", "marina", "alexander", "kirill", "anton",
        ),
        "ru-RU",
    ),
    "john": "en-US",
    "lea": "de-DE",
    "naomi": "he-IL",
    **dict.fromkeys(("amira", "madi", "saule", "zhanar"), "kk-KK"),
    **dict.fromkeys(("nigora", "zamira", "yulduz"), "uz-UZ"),
}  # fmt: skip
"""SpeechKit v3's voices, each with the one language it speaks (BCP 47)."""
VOICES = frozenset(VOICE_LANGUAGES)
"""Voice names SpeechKit v3 knows."""
