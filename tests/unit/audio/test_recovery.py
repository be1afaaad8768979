"""player.audio.recovery, player.audio.opening and the stream's watcher: a lost device is
noticed, reported once, waited for (bounded), and reopened with the ring kept; a slow one
is not lost; recovery backs off and never loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from player.audio.devices import DeviceInfo
from player.audio.opening import MOST_SET_ASIDE, START_TIMED_OUT, SetAside, open_stream
from player.audio.output import AudioOutput
from player.audio.recovery import BACKOFF_MAX, DeviceState, Limits
from player.audio.ring import RingBuffer
from player.audio.stream import OutputStream
from player.config import AudioSettings
from player.errors import OutputError
from tests.harness import waiting
from tests.harness.fake_stream import FakeStream

TIMEOUT = 5.0
"""Bound on every wait here: the watcher looks every 0.05 s and first retries at once."""
RATE = 8000
LIMITS = Limits(start_s=1.0, silent_s=0.2, check_s=0.05)
"""The daemon's are 5 s to start, 1 s of silence, a look every 0.25 s; the same rules
hold at a tenth of the time."""


CALLBACKS = (lambda *_: None, lambda _: None)
"""A stream's callback and end, for opening streams with no output behind them."""
STREAM: dict[str, Any] = {"device": "fake", "samplerate": RATE, "channels": 2, "blocksize": 80}


class TimedOut(Exception):
    """What sounddevice raises when PortAudio's ALSA backend gives up starting a stream."""

    def __init__(self) -> None:
        super().__init__("Error starting stream: Wait timed out", START_TIMED_OUT)


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
        self.slow_starts = 0
        """Starts still to time out, as PortAudio's do on a sink slower than 1 s to wake."""
        self.touched_after_timeout: list[str] = []

    def factory(self, **kwargs: Any) -> FakeStream:
        if not self.present:
            raise ValueError("No output device matching 'fake'")
        device = self
        stream = FakeStream(**kwargs)

        class Started(FakeStream):
            timed_out = False

            def start(self) -> None:
                if self.timed_out:
                    device.touched_after_timeout.append("start")
                if device.slow_starts:
                    device.slow_starts -= 1
                    self.timed_out = True
                    # PortAudio's thread primes the device as the sink wakes, then ends.
                    self.pull(80)
                    self.kwargs["finished_callback"]()
                    raise TimedOut
                super().start()

            def stop(self) -> None:
                if self.timed_out:
                    device.touched_after_timeout.append("stop")
                super().stop()

            def close(self) -> None:
                if self.timed_out:
                    device.touched_after_timeout.append("close")
                super().close()

        stream.__class__ = Started
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

    async def running(self, output: AudioOutput) -> None:
        """Play PortAudio's thread for the latest stream until the device is back."""
        async with asyncio.timeout(TIMEOUT):
            while output.stream.device_state.lost:
                if self.streams and self.streams[-1].active:
                    self.streams[-1].pull(80)
                await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def watched(slow_starts: int = 0, **audio: Any) -> AsyncIterator[tuple[AudioOutput, Device]]:
    """An output on a `Device` with these [audio] settings, its watcher running; the first
    ``slow_starts`` starts time out."""
    device = Device()
    device.slow_starts = slow_starts
    settings = AudioSettings(samplerate=RATE, prebuffer_ms=0, device_wait_s=TIMEOUT, **audio)
    info = DeviceInfo("fake", RATE, 2, round(RATE * settings.block_ms / 1000))
    output = AudioOutput(settings, info, stream_factory=device.factory)
    output.stream = OutputStream(
        settings, info, output.drain, output.telemetry, device.factory, device.reinit,
        limits=LIMITS, set_aside=SetAside(),
    )  # fmt: skip
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
    await waiting.until(condition, TIMEOUT)


def ones(n: int) -> np.ndarray:
    return np.full(n, 0.5, dtype=np.float32)


async def write_while_lost_past_the_wait(output: AudioOutput, device: Device) -> None:
    """An utterance whose device goes away and stays away past its 0.3 s wait."""
    output.stream.device_state.wait_s = 0.3
    output.begin_utterance()
    await output.write(ones(400), stall_timeout=1)
    device.pull_out()
    await asyncio.wait_for(output.write(ones(16000), stall_timeout=0.1), TIMEOUT)


def test_attempts_back_off_and_go_on_backing_off_for_a_device_back_only_briefly() -> None:
    state = DeviceState(wait_s=1.0)
    state.lose("gone")
    assert [state.next_attempt() for _ in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert state.reopens == 7
    state.regain()
    state.lose("gone again")  # within STABLE_S of coming back: no fresh start
    assert state.next_attempt() == BACKOFF_MAX


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
    await device.running(output)
    assert state.state == "ok"
    assert state.reason == ""
    assert output.stream.healthy
    assert device.streams[-1].active
    messages = [r.getMessage() for r in caplog.records]
    assert sum("audio device lost" in m for m in messages) == 1
    assert sum("audio device back" in m for m in messages) == 1
    assert state.reopens >= 3


async def at(output: AudioOutput, seconds: float) -> None:
    """Until ``seconds`` after the current stream started."""
    await asyncio.sleep(max(0.0, output.stream.opened_at + seconds - time.monotonic()))


async def test_a_stream_slow_to_start_is_not_lost(
    rig: tuple[AudioOutput, Device], caplog: pytest.LogCaptureFixture
) -> None:
    output, device = rig
    caplog.set_level(logging.DEBUG, logger="player.audio")
    # Half the start-up bound without a callback (over twice the silence limit).
    await at(output, LIMITS.start_s / 2)
    assert not output.stream.device_state.lost
    assert output.stream.lost_reason() is None
    assert output.stream.stuck_s() == 0.0
    # A call, then a pause longer than the silence limit while it settles: not lost.
    device.streams[0].pull(80)
    await at(output, 0.75 * LIMITS.start_s)
    assert output.stream.lost_reason() is None
    async with asyncio.timeout(TIMEOUT):  # then at its steady rate, past the bound
        while time.monotonic() - output.stream.opened_at < 1.2 * LIMITS.start_s:
            device.streams[0].pull(80)
            await asyncio.sleep(0.01)
    assert len(device.streams) == 1
    assert not any("audio device" in r.getMessage() for r in caplog.records)


async def test_a_writer_waits_for_a_slow_stream_beyond_its_stall_timeout(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    output.begin_utterance()
    await output.write(ones(160), stall_timeout=1)
    output.end_utterance()
    waiting = asyncio.create_task(output.wait_position(160, stall_timeout=0.1))
    await asyncio.sleep(3 * LIMITS.silent_s)  # no callback yet, still within start_s
    assert not waiting.done()
    device.streams[0].pull(80)
    device.streams[0].pull(80)
    await asyncio.wait_for(waiting, TIMEOUT)


async def test_a_writer_fails_once_a_stream_that_never_starts_is_lost_for_good(
    rig: tuple[AudioOutput, Device],
) -> None:
    output, device = rig
    device.present = False  # reopening fails too
    output.stream.device_state.wait_s = 0.3
    output.begin_utterance()
    await output.write(ones(160), stall_timeout=1)
    with pytest.raises(OutputError, match="did not start within 1 s"):
        await asyncio.wait_for(output.wait_position(160, stall_timeout=0.1), TIMEOUT)


async def test_a_stream_that_never_starts_is_lost_and_reopening_it_backs_off(
    rig: tuple[AudioOutput, Device], caplog: pytest.LogCaptureFixture
) -> None:
    output, device = rig
    caplog.set_level(logging.INFO, logger="player.audio.recovery")
    state = output.stream.device_state
    await until(lambda: state.lost)
    assert state.reason == f"the audio device did not start within {LIMITS.start_s:g} s"
    # Every reopened stream is as slow: each gets the whole start-up bound, and the waits
    # between attempts grow (0, 0.5, 1 s), so 2.5 s hold at most 3 attempts, not a loop.
    await asyncio.sleep(2.5)
    assert 2 <= state.reopens <= 3
    # An attempt is counted before its wait, its stream opened after it.
    assert state.reopens - 1 <= len(device.streams) - 1 <= state.reopens
    assert state.lost
    assert not any("audio device back" in r.getMessage() for r in caplog.records)
    await device.running(output)  # the next one that calls back is the device back
    assert sum("audio device back" in r.getMessage() for r in caplog.records) == 1


async def test_a_start_that_times_out_is_set_aside_and_another_stream_plays() -> None:
    async with watched(slow_starts=1) as (output, device):
        first, second = device.streams
        assert output.stream.running
        # The timed-out stream's late callback and end touched neither the ring nor state.
        output.begin_utterance()
        await output.write(ones(400), stall_timeout=1)
        assert not first.pull(80).any()
        first.kwargs["finished_callback"]()
        assert (second.pull(80) == 0.5).all()
        assert output.stream.lost_reason() is None
        device.pull_out()  # the device goes away later: no PortAudio re-initialisation
        await until(lambda: output.stream.device_state.reopens >= 2)
        assert device.reinits == 0
    assert device.touched_after_timeout == []  # never stopped, closed or started again


def never_starting() -> tuple[Device, SetAside, RingBuffer]:
    device = Device()
    device.slow_starts = 10**9
    return device, SetAside(), RingBuffer(800)


def test_a_device_that_never_starts_in_time_fails_the_open() -> None:
    device, set_aside, ring = never_starting()
    with pytest.raises(OutputError, match=r"did not start within 0.25 s: .*Wait timed out"):
        open_stream(device.factory, set_aside, ring, "fake", 0.25, *CALLBACKS, **STREAM)
    assert 1 < len(set_aside) < MOST_SET_ASIDE
    assert device.touched_after_timeout == []


def test_streams_set_aside_are_bounded_and_then_opening_fails_for_good() -> None:
    device, set_aside, ring = never_starting()
    with pytest.raises(OutputError, match=r"failed to start 8 times .* restart the daemon"):
        open_stream(device.factory, set_aside, ring, "fake", TIMEOUT, *CALLBACKS, **STREAM)
    assert len(set_aside) == MOST_SET_ASIDE
    assert set_aside.full
    device.slow_starts = 0  # even once the device would start: not without a restart
    with pytest.raises(OutputError, match="restart the daemon"):
        open_stream(device.factory, set_aside, ring, "fake", TIMEOUT, *CALLBACKS, **STREAM)


async def test_what_a_start_that_timed_out_read_from_the_ring_is_heard_after_all() -> None:
    async with watched() as (output, device):
        output.begin_utterance()
        await output.write(ones(400), stall_timeout=1)
        device.slow_starts = 1  # its thread primes the device with 80 frames, then fails
        output.stream.open()
        assert output.ring.read_pos == 0
        assert (device.streams[-1].pull(400) == 0.5).all()


async def test_a_stream_that_stops_calling_back_counts_as_lost(
    rig: tuple[AudioOutput, Device], caplog: pytest.LogCaptureFixture
) -> None:
    output, device = rig
    caplog.set_level(logging.DEBUG, logger="player.audio.recovery")
    # A hung sound server: the stream stays "active" but nobody pulls from it once it has
    # got going. The device itself is still there, so it is reopened at once.
    async with asyncio.timeout(TIMEOUT):
        while time.monotonic() - output.stream.opened_at < LIMITS.start_s:
            device.streams[0].pull(80)
            await asyncio.sleep(0.01)
    stopped = time.monotonic()
    await until(lambda: len(device.streams) == 2)
    assert time.monotonic() - stopped >= LIMITS.silent_s
    lost = [r for r in caplog.records if "audio device lost" in r.getMessage()]
    assert "stopped asking for audio" in lost[0].getMessage()
    assert lost[0].levelno == logging.WARNING
    await device.running(output)
    # Silent again once it has got going: lost again, but said at debug level only.
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
    assert output.stream.device_state.lost  # until the new stream has called back
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
    await device.running(output)
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
        await device.running(output)
        assert len(device.streams) == 2
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
    await until(lambda: len(device.streams) == 2)
    assert output.ring.available() == 0
    assert not device.streams[-1].pull(80).any()


async def test_stuck_counts_a_silent_stream_and_a_reopening_that_hangs() -> None:
    """What the daemon's systemd watchdog reads: a running stream without callbacks, and
    then the watcher's reopening stuck in PortAudio (a sound server that hangs)."""
    hang = threading.Event()
    async with watched() as (output, device):
        stream = output.stream
        device.streams[-1].pull(80)
        assert stream.stuck_s() < LIMITS.silent_s
        device.hanging = hang
        try:
            # No callback from now on: silent, then lost, then a reopening that hangs.
            await until(lambda: stream.device_state.lost and stream.stuck_s() > LIMITS.silent_s)
            assert stream.transitions(), "the watcher should be reopening by now"
        finally:
            hang.set()
        await device.running(output)
        assert stream.stuck_s() < LIMITS.silent_s


async def test_a_stream_closed_for_idleness_is_not_stuck() -> None:
    async with watched() as (output, device):
        output.stream.last_callback = time.monotonic() - 10 * LIMITS.start_s
        device.streams[-1].close()
        output.stream.close()
        assert output.stream.stuck_s() == 0.0
