"""Output devices as PortAudio sees them, and the one the daemon plays on.

Run as a script (``python -m player.audio.devices``) it prints the output devices as
JSON: PortAudio lists devices once, when it initialises, so the daemon asks a fresh
process for the current list rather than disturb its own open stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


LIST_TIMEOUT = 10.0
"""Seconds a fresh process may take to list the devices."""


def current_output_devices() -> list[dict[str, Any]]:
    """`output_devices` as a new PortAudio would list them now (devices plugged in or a
    sound server started since ours initialised). Blocks for a process start (~0.3 s);
    raises OutputError in one line."""
    command = [sys.executable, "-m", "player.audio.devices"]
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=LIST_TIMEOUT, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OutputError(f"cannot list the audio devices: {err}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise OutputError(f"cannot list the audio devices: {lines[-1]}")
    try:
        devices: list[dict[str, Any]] = json.loads(done.stdout)
    except ValueError as err:
        raise OutputError(f"cannot list the audio devices: unreadable answer ({err})") from None
    return devices


def _main() -> int:
    try:
        devices = output_devices()
    except OutputError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    sys.stdout.write(json.dumps(devices) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
