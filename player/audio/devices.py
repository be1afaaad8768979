"""Output devices as PortAudio sees them, and the one the daemon plays on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from player import limits
from player.config import AudioSettings
from player.errors import OutputError


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    """The device as PortAudio names it."""
    samplerate: int
    """Hertz; the rate the stream is open at and audio is requested at."""
    channels: int
    """Output channels; mono speech is copied to each."""
    block_frames: int
    """Frames per callback."""


def _portaudio() -> Any:
    """sounddevice, imported on first use; OutputError if PortAudio cannot be loaded."""
    try:
        import sounddevice
    except OSError as err:  # sounddevice raises it when libportaudio is missing
        raise OutputError(
            f"PortAudio is not available ({err}); install it: sudo apt-get install libportaudio2"
        ) from None
    return sounddevice


def resolve_device(settings: AudioSettings) -> DeviceInfo:
    """Ask PortAudio about the configured device; raises OutputError in plain words."""
    sounddevice = _portaudio()

    try:
        info = sounddevice.query_devices(settings.device, kind="output")
    except (ValueError, sounddevice.PortAudioError) as err:
        wanted = "the default output device" if settings.device is None else settings.device
        raise OutputError(f"audio device {wanted!r} is not available: {err}") from err
    max_channels = int(info["max_output_channels"])
    if max_channels < 1:
        raise OutputError(f"audio device {info['name']!r} has no output channels")
    channels = settings.channels or min(2, max_channels)
    if channels > max_channels:
        raise OutputError(
            f"audio device {info['name']!r} has {max_channels} output channels, "
            f"{channels} configured"
        )
    rate = settings.samplerate or round(info["default_samplerate"])
    # The service accepts 8-48 kHz; a device default outside that is clamped to 48 kHz
    # and PortAudio (or the sound server) converts.
    low, high = limits.RATE_HZ
    if not low <= rate <= high:
        rate = high
    block = max(1, round(rate * settings.block_ms / 1000))
    return DeviceInfo(str(info["name"]), rate, channels, block)


def output_devices() -> list[dict[str, Any]]:
    """Output devices as PortAudio sees them, in the fields of control.proto's Device."""
    sounddevice = _portaudio()

    default = sounddevice.default.device[1]
    hostapis = sounddevice.query_hostapis()
    return [
        {
            "index": int(info["index"]),
            "name": str(info["name"]),
            "hostapi": str(hostapis[info["hostapi"]]["name"]),
            "max_output_channels": int(info["max_output_channels"]),
            "default_samplerate": float(info["default_samplerate"]),
            "is_default": info["index"] == default,
        }
        for info in sounddevice.query_devices()
        if info["max_output_channels"] > 0
    ]
