"""player.audio.latency and the watcher applying it: a device that keeps running dry is
reopened at the next silence with twice the latency (bounded), and with half again after a
quiet period."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
import pytest

from player.audio.devices import DeviceInfo
from player.audio.latency import LatencyPolicy, OutputLatency
from player.audio.output import AudioOutput
from player.audio.recovery import Limits
from player.audio.stream import OutputStream
from player.config import AudioSettings
from tests.harness import waiting
from tests.harness.fake_stream import FakeStream

TIMEOUT = 5.0
RATE = 8000
POLICY = LatencyPolicy(raise_after=3, window_s=10.0, quiet_s=0.5, most_s=0.04)
"""The daemon's wait 300 s before lowering it again; the rules are the same at 0.5 s."""


def test_three_dry_spells_within_the_window_raise_it_one_step_at_a_time() -> None:
    latency = OutputLatency(POLICY)
    assert latency.request() == "low"
    latency.opened(0.01, now=0.0)
    latency.observe(2, now=1.0)
    assert latency.wanted(now=1.0) is None  # two are not "keeps running dry"
    latency.observe(3, now=20.0)  # the third comes after the first two left the window
    assert latency.wanted(now=20.0) is None
    latency.observe(5, now=21.0)
    assert latency.wanted(now=21.0) == 1
    latency.change(1, now=21.0)
    assert latency.request() == pytest.approx(0.02)
    latency.observe(8, now=22.0)
    latency.change(latency.wanted(now=22.0) or 0, now=22.0)
    assert latency.request() == pytest.approx(0.04)
    latency.observe(11, now=23.0)
    assert latency.wanted(now=23.0) is None  # bounded by most_s
    assert latency.wanted(now=23.0 + POLICY.quiet_s) == 1  # quiet again: half
    assert latency.wanted(now=23.0 + POLICY.quiet_s / 2) is None


def test_a_raise_waits_for_the_silence_however_long_the_speech_after_it() -> None:
    latency = OutputLatency(POLICY)
    latency.opened(0.01, now=0.0)
    latency.observe(3, now=3.0)  # three dry spells early in a long utterance
    latency.observe(3, now=15.0)  # the window has passed by the time it ends
    assert latency.wanted(now=15.0) == 1


async def until(condition: Callable[[], bool]) -> None:
    await waiting.until(condition, TIMEOUT)


def output_on(latency: OutputLatency) -> tuple[AudioOutput, list[FakeStream]]:
    """An output whose stream is opened at ``latency``, looked at every 20 ms."""
    streams: list[FakeStream] = []

    def factory(**kwargs: object) -> FakeStream:
        streams.append(FakeStream(**kwargs))
        return streams[-1]

    settings = AudioSettings(samplerate=RATE, prebuffer_ms=0, idle_stop_ms=0)
    info = DeviceInfo("fake", RATE, 2, round(RATE * settings.block_ms / 1000))
    output = AudioOutput(settings, info, stream_factory=factory)
    output.stream = OutputStream(
        settings, info, output.drain, output.telemetry, factory,
        limits=Limits(check_s=0.02), latency=latency,
    )  # fmt: skip
    output.stream.open()
    return output, streams


async def test_coming_down_a_step_from_above_is_logged_as_lowered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="player.audio")
    latency = OutputLatency(POLICY)
    latency.low_s = 0.01
    latency.change(2, now=0.0)  # raised twice, long ago
    output, streams = output_on(latency)
    assert streams[0].kwargs["latency"] == pytest.approx(0.04)
    watcher = asyncio.create_task(output.stream.watch())
    try:
        await until(lambda: len(streams) == 2)
        assert streams[1].kwargs["latency"] == pytest.approx(0.02)
        assert "output latency lowered from 40 ms" in caplog.text
        assert "raised" not in caplog.text
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await output.stream.aclose()


async def test_the_stream_is_reopened_at_the_next_silence_and_comes_back_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="player.audio")
    output, streams = output_on(OutputLatency(POLICY))
    assert streams[0].kwargs["latency"] == "low"
    watcher = asyncio.create_task(output.stream.watch())
    try:
        output.begin_utterance()
        await output.write(np.full(800, 0.5, dtype=np.float32), stall_timeout=1)
        for _ in range(3):
            streams[0].pull(80, underflow=True)  # the device ran dry before each call
        await asyncio.sleep(0.2)
        assert len(streams) == 1  # not while speech is still to come
        output.end_utterance()
        while output.ring.available():
            streams[0].pull(80)
        await until(lambda: len(streams) == 2)
        assert streams[1].kwargs["latency"] == pytest.approx(0.02)
        await until(lambda: output.stream.latency_ms == 20)
        assert "output latency raised from 10 to 20 ms" in caplog.text
        # Quiet for quiet_s: back down to "low" at the next look.
        await until(lambda: len(streams) == 3)
        assert streams[2].kwargs["latency"] == "low"
        assert "output latency lowered from 20 ms" in caplog.text
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await output.stream.aclose()
