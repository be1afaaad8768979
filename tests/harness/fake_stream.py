"""A stand-in for sounddevice.OutputStream: the test plays the PortAudio thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from player.audio.devices import DeviceInfo
from player.audio.output import AudioOutput
from player.config import AudioSettings


class FakeFlags:
    """The part of sounddevice.CallbackFlags the callback reads."""

    def __init__(self, output_underflow: bool = False) -> None:
        self.output_underflow = output_underflow


class FakeStream:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback: Callable[..., None] = kwargs["callback"]
        self.channels: int = kwargs["channels"]
        self.active = False
        # What a sound server grants: the seconds asked for, or 10 ms for "low".
        asked = kwargs.get("latency")
        self.latency = asked if isinstance(asked, float) else 0.01
        # Set by start() and stop(), which the output may call from a worker thread.
        self.started = threading.Event()
        self.stopped = threading.Event()

    def start(self) -> None:
        self.active = True
        self.stopped.clear()
        self.started.set()

    def stop(self) -> None:
        self.active = False
        self.started.clear()
        self.stopped.set()

    def close(self) -> None:
        self.active = False

    def pull(self, frames: int, *, underflow: bool = False) -> np.ndarray:
        """One callback, as PortAudio makes it, with garbage in the buffer beforehand;
        `underflow`: PortAudio reports that the device ran dry before this call."""
        out = np.full((frames, self.channels), 7.0, dtype=np.float32)
        self.callback(out, frames, None, FakeFlags(underflow))
        return out


def make_output(
    rate: int = 8000,
    channels: int = 2,
    clock: Callable[[], float] = time.monotonic,
    **audio: Any,
) -> tuple[AudioOutput, list[FakeStream]]:
    streams: list[FakeStream] = []

    def factory(**kwargs: Any) -> FakeStream:
        stream = FakeStream(**kwargs)
        streams.append(stream)
        return stream

    settings = AudioSettings(samplerate=rate, **audio)
    device = DeviceInfo("fake", rate, channels, round(rate * settings.block_ms / 1000))
    output = AudioOutput(settings, device, stream_factory=factory, clock=clock)
    output.stream.open()
    return output, streams
