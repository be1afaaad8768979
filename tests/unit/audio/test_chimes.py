import wave
from pathlib import Path

import numpy as np
import pytest

from player.audio.chimes import load_chimes, load_wav
from player.config import ChimeSettings
from player.errors import ChimeError
from player.speech.priority import Priority


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2, channels: int = 1):
    scale = (1 << (8 * width - 1)) - 1
    ints = np.round(samples * scale).astype(f"<i{width}")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(ints, channels).tobytes())
    return path


def tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


@pytest.mark.parametrize("width", [2, 4])
def test_a_chime_is_converted_to_the_device_rate_once(tmp_path, width):
    path = write_wav(tmp_path / "ding.wav", tone(22050, 0.2), 22050, width, channels=2)
    frames = load_wav(path, 48000)
    assert frames.dtype == np.float32
    assert frames.ndim == 1
    assert abs(len(frames) - 0.2 * 48000) <= 2
    # Still a 440 Hz tone at half scale.
    spectrum = np.abs(np.fft.rfft(frames))
    assert abs(np.argmax(spectrum) * 48000 / len(frames) - 440) < 10
    assert 0.45 < np.max(np.abs(frames)) < 0.55


def test_every_bad_chime_is_reported_at_once(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav")
    long = write_wav(tmp_path / "long.wav", tone(8000, 6.0), 8000)
    with pytest.raises(ChimeError) as info:
        load_chimes(ChimeSettings(important=junk, message=long), 48000)
    message = str(info.value)
    assert "[chimes] important" in message
    assert "junk.wav" in message
    assert "[chimes] message" in message
    assert "6.0 s" in message


def test_chimes_are_keyed_by_priority(tmp_path):
    path = write_wav(tmp_path / "ding.wav", tone(48000, 0.1), 48000)
    chimes = load_chimes(ChimeSettings(important=path), 48000)
    assert list(chimes) == [Priority.IMPORTANT]
    assert len(chimes[Priority.IMPORTANT]) == 4800
