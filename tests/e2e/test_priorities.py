"""End to end, issue 5: priorities, pause and resume, heard through the null sink."""

from __future__ import annotations

import asyncio
import time

import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Listener,
    Recording,
    heard_at_least,
    of,
    quiet_for,
    sound_ms,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

SENTENCES = [f"Sentence {n} is spoken now." for n in ("one", "two", "three", "four", "five")]
MESSAGE = " ".join(SENTENCES)
LOW, HIGH = 440.0, 880.0
SCRIPT = ToneScript(api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.05, frequency_hz=LOW)


@pytest.fixture
def tone_script() -> ToneScript:
    return SCRIPT


def silent_after(recorder: Recorder, x: Recording, start: int, asked: float) -> float:
    """Seconds from `asked` until the sound that was playing then had stopped."""
    at = recorder.index_at(asked) - start
    for begin, end in aa.sound_spans(x[start:], RATE):
        if begin <= at < end:
            return recorder.arrival_time(start + end - 1) - asked
    raise AssertionError("nothing was playing when it was asked")


async def test_important_cuts_a_message_which_resumes_from_the_cut_sentence(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()
    async with Client(daemon.socket) as client, Listener(client) as listener:
        message = (await client.say(MESSAGE)).utterance_id
        # Well into the second sentence (each lasts about 1.1 s).
        await heard_at_least(recorder, start, 1700)
        tone_server.script = ToneScript(**{**vars(SCRIPT), "frequency_hz": HIGH})
        asked = time.monotonic()
        important = (await client.say("Attention please.", priority="important")).utterance_id
        await tone_server.wait_calls(2, TIMEOUT)
        tone_server.script = SCRIPT
        await listener.finished(message)
    events = listener.events

    x = await quiet_for(recorder, start, 0.3)
    assert silent_after(recorder, x, start, asked) < 0.250

    (interrupted,) = of(events, message, "interrupted")
    assert important in str(interrupted["reason"])
    # Each sentence is its own text chunk: the last one begun was cut, and is spoken
    # again from its start.
    cut_sentence = str(interrupted["text"]).count(".") - 1
    assert 1 <= cut_sentence < len(SENTENCES) - 1  # it really was cut in the middle
    calls = await tone_server.wait_calls(3, TIMEOUT)
    assert "".join(calls[2].texts).split() == " ".join(SENTENCES[cut_sentence:]).split()

    # Heard: the message, then the important one, then the message again.
    spans = aa.sound_spans(x[start:], RATE)
    assert len(spans) == 2, spans  # one cut (a silence while the important one starts)
    after = x[start + spans[1][0] : start + spans[1][1]]
    tenth = RATE // 10
    assert aa.dominant_frequency(after[:tenth], RATE) == pytest.approx(HIGH, abs=20)
    assert aa.dominant_frequency(after[-tenth:], RATE) == pytest.approx(LOW, abs=20)
    (done,) = of(events, message, "finished")
    assert int(str(done["played_ms"])) > int(str(interrupted["played_ms"]))


async def test_text_replaces_text(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()
    async with Client(daemon.socket) as client, Listener(client) as listener:
        first = (await client.say(MESSAGE, priority="text")).utterance_id
        await heard_at_least(recorder, start, 800)
        asked = time.monotonic()
        second = (await client.say("Newer text.", priority="text")).utterance_id
        await listener.finished(second)
    events = listener.events

    x = await quiet_for(recorder, start, 0.3)
    assert silent_after(recorder, x, start, asked) < 0.250
    (cancelled,) = of(events, first, "cancelled")
    assert second in str(cancelled["reason"])
    assert MESSAGE.startswith(str(cancelled["text"]))
    assert not of(events, first, "finished")
    assert of(events, second, "finished")
    assert len(await tone_server.wait_calls(2, TIMEOUT)) == 2  # the first is never resumed


async def test_a_notification_is_dropped_while_busy_and_spoken_when_idle(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()
    said = await run_cli(daemon.config, daemon.env, "say", MESSAGE)
    assert said.returncode == 0, said.stderr
    await heard_at_least(recorder, start, 300)

    dropped = await run_cli(
        daemon.config, daemon.env, "say", "--priority", "notification", "You have mail."
    )
    assert dropped.returncode == 1
    assert "dropped" in dropped.stderr
    assert len(dropped.stderr.strip().splitlines()) == 1

    stopped = await run_cli(daemon.config, daemon.env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert len(tone_server.calls) == 1  # the notification never reached the service

    spoken = await run_cli(
        daemon.config, daemon.env, "say", "--wait", "--priority", "notification", "Mail."
    )
    assert spoken.returncode == 0, spoken.stderr
    assert len(tone_server.calls) == 2


async def test_pause_then_resume_continues_where_it_stopped(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    text = " ".join(SENTENCES[:2])
    start = recorder.sample_count()
    async with Client(daemon.socket) as client:
        speaking = asyncio.create_task(client.say(text, wait=True))
        await heard_at_least(recorder, start, 800)
        asked = time.monotonic()
        await client.pause()
        assert (await client.status()).paused
        x = await quiet_for(recorder, start, 0.8)
        assert not speaking.done()
        await client.resume()
        reply = await asyncio.wait_for(speaking, TIMEOUT)

    x = await quiet_for(recorder, start, 0.3)
    # Quiet within a block and a fade (plus the sink's latency).
    assert silent_after(recorder, x, start, asked) < 0.100
    spans = aa.sound_spans(x[start:], RATE)
    assert len(spans) == 2, spans
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    sent_ms = len(call.audio) // 2 * 1000 / RATE
    # Nothing lost and nothing said twice: the fade's few ms are played again, faded in.
    assert sound_ms(x[start:]) == pytest.approx(sent_ms, abs=30)
    assert reply.played_ms == pytest.approx(sent_ms, abs=2)
    first, second = (x[start + a : start + b] for a, b in spans)
    assert aa.dominant_frequency(second, RATE) == pytest.approx(LOW, abs=20)
    assert len(first) > 0.7 * RATE
