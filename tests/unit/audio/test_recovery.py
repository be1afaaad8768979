"""player.audio.recovery and the stream's watcher: a lost device is noticed, reported
once, waited for (bounded), and reopened with the ring kept."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from player.audio.devices import DeviceInfo
from player.audio.output import AudioOutput
from player.audio.recovery import DeviceState, backoff
from player.audio.stream import SILENT_LIMIT, OutputStream
from player.config import AudioSettings
from player.errors import OutputError
from tests.harness.fake_stream import FakeStream

TIMEOUT = 5.0
"""Bound on every wait here: the watcher looks every 0.25 s and first retries after 0.5 s."""
RATE = 8000


class Device:
    """A sound device that can be pulled out: the stream factory and PortAudio's
    re-initialisation the watcher is given."""

    def __init__(self) -> None:
        self.present = True
        self.streams: list[FakeStream] = []
        self.reinits = 0
        self.hanging: threading.Event | None = None
        """While set to an unset event, re-initialising PortAudio hangs on it, as it does
        when the sound server hangs."""

    def factory(self, **kwargs: Any) -> FakeStream:
        if not self.present:
            raise ValueError("No output device matching 'fake'")
        stream = FakeStream(**kwargs)
        self.streams.append(stream)
        return stream

    def reinit(self) -> None:
        self.reinits += 1
        if self.hanging is not None:
            self.hanging.wait(TIMEOUT)

    def pull_out(self) -> None:
        """What PortAudio shows when the sound server dies: the stream ends."""
        self.present = False
        stream = self.streams[-1]
        stream.active = False
        stream.kwargs["finished_callback"]()


@contextlib.asynccontextmanager
async def watched(**audio: Any) -> AsyncIterator[tuple[AudioOutput, Device]]:
    """An output on a `Device` with these [audio] settings, its watcher running."""
    device = Device()
    settings = AudioSettings(samplerate=RATE, prebuffer_ms=0, device_wait_s=TIMEOUT, **audio)
    info = DeviceInfo("fake", RATE, 2, round(RATE * settings.block_ms / 1000))
    output = AudioOutput(settings, info, stream_factory=device.factory)
    output.stream = OutputStream(
        settings, info, output.drain, output.telemetry, device.factory, device.reinit
    )
    output.stream.open()
    watcher = asyncio.create_task(output.stream.watch())
    try:
        yield output, device
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await output.stream.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[tuple[AudioOutput, Device]]:
    async with watched() as made:
        yield made


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def ones(n: int) -> np.ndarray:
    return np.full(n, 0.5, dtype=np.float32)


async def write_while_lost_past_the_wait(output: AudioOutput, device: Device) -> None:
    """An utterance whose device goes away and stays away past its 0.3 s wait."""
    output.stream.device_state.wait_s = 0.3
    output.begin_utterance()
    await output.write(ones(400), stall_timeout=1)
    device.pull_out()
    await asyncio.wait_for(output.write(ones(16000), stall_timeout=0.1), TIMEOUT)


def test_backoff_doubles_up_to_its_limit() -> None:
    assert list(itertools.islice(backoff(0.5, 5.0), 6)) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_lost_device_is_said_once_and_reopened_when_back(
    rig: tuple[AudioOutput, Device], caplog: pytest.LogCaptureFixture
) -> None:
    output, device = rig
    caplog.set_level(logging.INFO, logger="player.audio.recovery")
    state = output.stream.device_state
    device.pull_out()
    await until(lambda: state.lost)
    assert state.state == "lost"
    assert "ended by itself" in state.reason
    assert not output.stream.healthy
    await until(lambda: device.reinits >= 2)  # it keeps looking while the device is away
    device.present = True
    await until(lambda: not state.lost)
    assert state.state == "ok"
    assert state.reason == ""
    assert output.stream.healthy
    assert device.streams[-1].active
    messages = [r.getMessage() for r in caplog.records]
    assert sum("audio device lost" in m for m in messages) == 1
    assert sum("audio device back" in m for m in messages) == 1


async def test_a_stream_that_stops_calling_back_counts_as_lost(
    rig: tuple[AudioOutput, Device], caplog: pytest.LogCaptureFixture
) -> None:
    _, device = rig
    caplog.set_level(logging.DEBUG, logger="player.audio.recovery")
    # A hung sound server: the stream stays "active" but nobody pulls from it. The
    # device itself is still there, so it is reopened at once.
    started = time.monotonic()
    await until(lambda: len(device.streams) == 2)
    assert time.monotonic() - started >= SILENT_LIMIT
    lost = [r for r in caplog.records if "audio device lost" in r.getMessage()]
    assert "stopped asking for audio" in lost[0].getMessage()
    assert lost[0].levelno == logging.WARNING
    # Silent again: lost again, but said at debug level only.
    await until(lambda: len(device.streams) == 3)
    lost = [r for r in caplog.records if "audio device lost" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.WARNING, logging.DEBUG]


async def test_audio_queued_when_the_device_went_away_plays_on_once_it_is_back(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    output.begin_utterance()
    await output.write(ones(400), stall_timeout=1)
    device.streams[-1].pull(80)
    device.pull_out()
    await until(lambda: output.stream.device_state.lost)
    # Waits for room, beyond the stall timeout, instead of failing.
    writing = asyncio.create_task(output.write(ones(16000), stall_timeout=0.2))
    await asyncio.sleep(0.5)
    assert not writing.done()
    device.present = True
    await until(lambda: len(device.streams) == 2)
    stream = device.streams[-1]
    # Goes on from the first frame the old stream had not taken.
    assert output.ring.read_pos == 80
    async with asyncio.timeout(TIMEOUT):
        while not writing.done():
            assert (stream.pull(800) == 0.5).all()
            await asyncio.sleep(0.01)
    await writing


async def test_the_writer_fails_with_the_reason_once_the_wait_is_over(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    with pytest.raises(OutputError, match=r"the audio device was lost .*ended by itself"):
        await write_while_lost_past_the_wait(output, device)


async def test_an_utterance_waits_for_the_device_before_it_starts(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    device.pull_out()
    preparing = asyncio.create_task(output.stream.prepare())
    await asyncio.sleep(0.5)
    assert not preparing.done()
    device.present = True
    await asyncio.wait_for(preparing, TIMEOUT)
    assert output.stream.healthy


async def test_an_utterance_fails_with_the_reason_after_device_wait_s() -> None:
    state = DeviceState(wait_s=0.1)
    assert state.state == "ok"
    await asyncio.wait_for(state.wait(), TIMEOUT)  # there: no wait at all
    assert state.lose("the sound server went away")
    assert not state.lose("something else")  # said once; the first reason stands
    with pytest.raises(OutputError, match=r"lost \(the sound server went away\); not back"):
        await asyncio.wait_for(state.wait(), TIMEOUT)
    state.regain()
    assert state.state == "ok"
    await asyncio.wait_for(state.wait(), TIMEOUT)


async def test_a_stream_closed_for_idleness_that_cannot_open_again_is_lost() -> None:
    async with watched(idle_stop_ms=50) as (output, device):
        await idle_then_lost_at_wake(output, device)


async def idle_then_lost_at_wake(output: AudioOutput, device: Device) -> None:
    idle = asyncio.create_task(output.stream.stop_when_idle(lambda: False))
    try:
        device.streams[0].pull(80)  # the watcher must not find it silent meanwhile
        await until(lambda: output.stream.state == "idle")
        assert output.stream.healthy
        device.present = False  # gone while nothing played: seen at the next wake
        await output.stream.prepare()
        await output.stream.wake()
        await until(lambda: output.stream.device_state.lost)
        assert "cannot open audio device" in output.stream.device_state.reason
        device.present = True
        await until(lambda: not output.stream.device_state.lost)
        assert len(device.streams) == 2  # (closed again since, for idleness)
    finally:
        idle.cancel()
        await asyncio.gather(idle, return_exceptions=True)


async def test_audio_of_utterances_failed_for_the_device_does_not_play_when_it_is_back(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    with pytest.raises(OutputError):
        await write_while_lost_past_the_wait(output, device)
    output.end_utterance()
    device.present = True
    await until(lambda: not output.stream.device_state.lost)
    assert output.ring.available() == 0
    assert not device.streams[-1].pull(80).any()


async def test_stuck_counts_a_silent_stream_and_a_reopening_that_hangs() -> None:
    """What the daemon's systemd watchdog reads: a running stream without callbacks, and
    then the watcher's reopening stuck in PortAudio (a sound server that hangs)."""
    hang = threading.Event()
    async with watched() as (output, device):
        stream = output.stream
        device.streams[-1].pull(80)
        assert stream.stuck_s() < SILENT_LIMIT
        device.hanging = hang
        try:
            # No callback from now on: silent, then lost, then a reopening that hangs.
            await until(lambda: stream.device_state.lost and stream.stuck_s() > SILENT_LIMIT)
            assert stream.transitions(), "the watcher should be reopening by now"
        finally:
            hang.set()
        await until(lambda: not stream.device_state.lost)
        assert stream.stuck_s() < SILENT_LIMIT


async def test_a_stream_closed_for_idleness_is_not_stuck() -> None:
    async with watched() as (output, device):
        output.stream.last_callback = time.monotonic() - 10 * SILENT_LIMIT
        device.streams[-1].close()
        output.stream.close()
        assert output.stream.stuck_s() == 0.0
