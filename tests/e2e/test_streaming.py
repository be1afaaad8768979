"""End to end, issue 5: text streamed into an utterance token by token, as an LLM writes
it, through the real daemon to the null sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Recording,
    heard_and_quiet,
    record_until,
    sound_s,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

ANSWER = (
    "Sure. The museum opens at nine in the morning and closes at six. "
    "On Sundays it closes at four, and the last entry is half an hour before closing."
)
TOKEN_GAP = 0.04
"""Seconds between tokens: about 25 tokens a second, a brisk LLM."""


def tokens(text: str) -> list[str]:
    """Pieces as an LLM tokenizer cuts them: words, split again inside the longer ones."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        word = word if i == 0 else " " + word
        out += [word[:4], word[4:]] if len(word) > 6 else [word]
    return out


async def heard(recorder: Recorder, since: int, seconds: float) -> Recording:
    """The recording from `since`, once it holds `seconds` of sound then some silence."""
    return (await record_until(recorder, heard_and_quiet(seconds, since=since)))[since:]


@pytest.fixture
def tone_script() -> ToneScript:
    # Like the real service, it speaks only what a force_synthesis (or the end) releases:
    # speech before the end of the input is the daemon's doing.
    return ToneScript(
        api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.1, hold_until_force=True
    )


async def test_tokens_at_llm_speed_are_heard_before_the_last_one_is_sent(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start_index = recorder.sample_count()
    sent: list[float] = []

    async def llm() -> AsyncIterator[str]:
        for token in tokens(ANSWER):
            yield token
            sent.append(time.monotonic())
            await asyncio.sleep(TOKEN_GAP)  # the LLM's pace, not a wait for anything

    async with Client(daemon.socket) as client:
        await asyncio.wait_for(client.say(llm(), wait=True), TIMEOUT)

    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    expected = len(call.audio) / 2 / RATE
    x = await heard(recorder, start_index, expected - 0.05)
    spans = aa.sound_spans(x, RATE)
    first_heard = recorder.arrival_time(start_index + spans[0][0])
    assert first_heard < sent[-1] - 1.0, "speech waited for the end of the answer"
    assert all(text.endswith(" ") for text in call.texts)
    assert "".join(call.texts).split() == ANSWER.split()
    assert call.forced >= 2  # at least the first two sentence ends
    assert sound_s(x) == pytest.approx(expected, abs=0.05)


async def test_a_stall_in_the_input_is_silence_then_speech_goes_on(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start_index = recorder.sample_count()
    resumed = asyncio.Event()

    async def stalling() -> AsyncIterator[str]:
        yield "Let me think"  # no sentence end: only the pause makes it speak
        # The stall lasts until the words are heard, which the pause rule (300 ms) does.
        await heard(recorder, start_index, 0.4)
        call = tone_server.calls[0]
        assert call.forced == 1
        assert call.texts == ["Let me ", "think "]  # the held word went out too
        resumed.set()
        yield " about that. Yes, it is open."

    async with Client(daemon.socket) as client:
        await asyncio.wait_for(client.say(stalling(), wait=True), TIMEOUT)

    assert resumed.is_set()
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert call.forced >= 1
    expected = len(call.audio) / 2 / RATE
    assert sound_s(await heard(recorder, start_index, expected - 0.05)) == pytest.approx(
        expected, abs=0.05
    )
