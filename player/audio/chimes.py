"""Chimes: short WAV files played before utterances of a priority.

Each is read and converted to the device's rate once, at start-up, so playing one is a
copy into the ring like any other audio.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from player.audio.ring import Frames
from player.config import ChimeSettings
from player.errors import ChimeError

MAX_CHIME_S = 5.0
"""A chime is a cue, not an announcement; longer files are refused."""


def load_chimes(settings: ChimeSettings, samplerate: int) -> dict[str, Frames]:
    """Every configured chime, by priority name, as mono float32 frames at ``samplerate``;
    raises ChimeError listing every file that failed."""
    chimes: dict[str, Frames] = {}
    problems: list[str] = []
    for name, path in settings.files().items():
        try:
            chimes[name] = load_wav(path, samplerate)
        except ChimeError as err:
            problems.append(f"[chimes] {name}: {err}")
    if problems:
        raise ChimeError("; ".join(problems))
    return chimes


def load_wav(path: Path, samplerate: int) -> Frames:
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise ChimeError(f"{path} is not a WAV file we can read ({err})") from None
    if width not in (1, 2, 3, 4):
        raise ChimeError(f"{path}: {8 * width}-bit samples are not supported")
    frames = _decode(data, width).reshape(-1, channels).mean(axis=1, dtype=np.float32)
    if len(frames) / rate > MAX_CHIME_S:
        raise ChimeError(f"{path} lasts {len(frames) / rate:.1f} s; at most {MAX_CHIME_S:g} s")
    if rate != samplerate:
        # Chimes are resampled once; libsoxr's filters keep them free of aliasing that
        # interpolation of our own would add.
        import soxr

        frames = soxr.resample(frames, rate, samplerate).astype(np.float32)
    return np.ascontiguousarray(frames, dtype=np.float32)


def _decode(data: bytes, width: int) -> Frames:
    """Integer PCM (8-bit unsigned, else signed little-endian) to floats in [-1, 1)."""
    if width == 1:
        return np.asarray((np.frombuffer(data, np.uint8) - 128.0) / 128, dtype=np.float32)
    if width == 3:
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) << 8) | (raw[:, 1].astype(np.int32) << 16)
        ints |= raw[:, 2].astype(np.int32) << 24
        return np.asarray((ints >> 8) / float(1 << 23), dtype=np.float32)
    ints = np.frombuffer(data, f"<i{width}")
    return np.asarray(ints / float(1 << (8 * width - 1)), dtype=np.float32)
