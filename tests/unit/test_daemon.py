"""player.daemon's status line for systemd: idle, speaking, spoken locally after a
fallback, device lost; and the watchdog's view of the audio side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import numpy as np

from player.daemon.serving import WEDGED_S, _ServiceStatus
from player.speech.playback import Playback
from player.speech.utterance import Utterance
from player.synthesis.interface import CallResult, Piece, Sink, VoiceChoice
from tests.harness import waiting
from tests.harness.fake_stream import FakeStream, make_output

TIMEOUT = 5.0


class FakeSynthesis:
    """The Synthesis interface: 10 ms of audio per piece; `fallback` says the call went
    to the local synthesizer."""

    def __init__(self) -> None:
        self.fallback = False

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        frames = 0
        async for _ in pieces:
            await sink.audio(np.full(80, 0.25, dtype=np.float32))
            frames += 80
        return CallResult(frames, "", 0.0, fallback=self.fallback)


def speak(playback: Playback, text: str) -> Utterance:
    utterance = Utterance()
    playback.submit(utterance)
    utterance.feed(text)
    utterance.close()
    return utterance


async def until(condition: Callable[[], bool]) -> None:
    await waiting.until(condition, TIMEOUT)


async def play_out(stream: FakeStream, utterance: Utterance) -> None:
    """Play the PortAudio thread until the utterance has been heard."""
    async with asyncio.timeout(TIMEOUT):
        while not utterance.done.done():
            stream.pull(80)
            await asyncio.sleep(0.001)


async def test_the_status_line_follows_the_daemon() -> None:
    output, (stream,) = make_output(prebuffer_ms=0)
    synthesis = FakeSynthesis()
    playback = Playback(output, synthesis)
    status = _ServiceStatus(playback)
    runner = asyncio.create_task(playback.run())
    try:
        assert status.line() == "idle"
        first = speak(playback, "one two")
        await until(lambda: status.line() == f"speaking {first.id}")
        await play_out(stream, first)
        assert status.line() == "idle"

        synthesis.fallback = True
        local = speak(playback, "three four")
        # Its synthesis ends (and is counted) while its audio is still to be played.
        await until(lambda: playback.counters.fallbacks == 1)
        assert status.line() == f"cloud unreachable, speaking locally ({local.id})"
        await play_out(stream, local)
        assert status.line() == "idle"

        output.stream.device_state.lose("the sound server went away")
        assert status.line() == "device lost: the sound server went away"
        assert status.alive()  # a device that went away is the watcher's, not systemd's
        output.stream.device_state.regain()
        assert status.line() == "idle"
    finally:
        runner.cancel()
        await asyncio.wait([runner], timeout=TIMEOUT)


async def test_a_running_stream_without_callbacks_is_not_alive() -> None:
    output, (stream,) = make_output()
    status = _ServiceStatus(Playback(output, FakeSynthesis()))
    stream.pull(80)
    assert status.alive()
    # As if it had got going long ago and fell silent since.
    output.stream.opened_at -= 2 * WEDGED_S
    output.stream.last_callback -= WEDGED_S + 1
    assert not status.alive()
