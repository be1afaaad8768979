"""End to end, issue 12: faults a kiosk meets in the field. A synthesis server that hangs
or stalls fails that utterance in one line within its bound, and the daemon goes on
with the next; text a service sends ahead of its audio is heard with that audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Listener,
    heard_and_quiet,
    heard_at_least,
    of,
    pieces,
    quiet_for,
    record_until,
    sound_s,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

BOUND = 1
"""first_audio_timeout_s and stall_timeout_s of the daemons here, seconds."""
GAVE_UP_WITHIN = 8.0
"""Seconds `say --wait` may take to fail against a silent server: the bound plus a
generous margin for a busy machine, still short of the default first_audio_timeout_s."""
LOCAL_TIMEOUT = 60.0
"""Seconds for an utterance the local synthesizer speaks: its child loads a voice first."""
TEXT = "The first sentence is short. The second one runs on for a good while longer."
LONG = " ".join(f"Sentence number {n} keeps the speaker busy for a while." for n in range(8))
BYTES_PER_S = RATE * 2

StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.1)


@pytest.fixture
async def start_daemon(tone_server: ToneServer, daemons: Daemons) -> StartDaemon:
    """A daemon speaking through `tone_server` with BOUND for both answer timeouts."""

    async def start(**speechkit: object) -> Daemon:
        bounds = {"first_audio_timeout_s": BOUND, "stall_timeout_s": BOUND, **speechkit}
        return await daemons.start(tone_server.address, KEY, speechkit=bounds)

    return start


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


async def hear_660_hz(daemon: Daemon, recorder: Recorder, text: str) -> None:
    """`say --wait TEXT` succeeds, and a 660 Hz tone is heard."""
    before = recorder.sample_count()
    ok = await run_cli(daemon.config, daemon.env, "say", "--wait", text)
    assert ok.returncode == 0, ok.stderr + daemon.log
    x = (await record_until(recorder, heard_and_quiet(0.3, since=before)))[before:]
    start, end = aa.sound_spans(x, RATE)[-1]
    assert aa.dominant_frequency(x[start:end], RATE) == pytest.approx(660.0, abs=3.0)


# --- a hung server is not a hung caller ---------------------------------------------------------


async def test_a_server_that_never_answers_fails_say_wait_and_the_next_utterance_is_spoken(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon()
    tone_server.script = ToneScript(api_key=KEY, never_answer=True)
    began = time.monotonic()
    hung = asyncio.create_task(run_cli(daemon.config, daemon.env, "say", "--wait", "Anybody?"))
    await tone_server.wait_started(1, TIMEOUT)
    # The next utterance queues behind the hung one; the server is fine by the time it goes.
    tone_server.script = ToneScript(api_key=KEY, frequency_hz=660.0)
    await hear_660_hz(daemon, recorder, "Next, please.")
    failed = await asyncio.wait_for(hung, TIMEOUT)
    took = time.monotonic() - began

    assert failed.returncode == 1
    assert (
        one_line(failed.stderr) == "speechkit-player: SpeechKit sent no audio within 1 s; gave up"
    )
    assert took < GAVE_UP_WITHIN
    first, second = await tone_server.wait_calls(2, TIMEOUT)
    assert first.responses == []
    assert "".join(second.texts).split() == ["Next,", "please."]
    state = await status_of(daemon)
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["errors"], counters["utterances"]) == (1, 1)
    assert state["last_error"] == "SpeechKit sent no audio within 1 s; gave up"
    assert "first_audio_timeout_s" in daemon.log  # the log names the setting to tune


async def test_a_server_that_stalls_mid_way_fails_that_utterance_only(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon(retry_s=0)  # not resumed: tests/e2e/test_resume.py
    tone_server.script = ToneScript(api_key=KEY, stall_after_bytes=BYTES_PER_S // 2)
    before = recorder.sample_count()
    began = time.monotonic()
    failed = await run_cli(daemon.config, daemon.env, "say", "--wait", LONG)
    took = time.monotonic() - began

    assert failed.returncode == 1
    assert one_line(failed.stderr) == (
        "speechkit-player: SpeechKit stopped sending audio for 1 s; gave up"
    )
    assert took < GAVE_UP_WITHIN
    # What came before the stall was played, and nothing after it.
    x = await quiet_for(recorder, before, 0.3)
    assert sound_s(x[before:]) == pytest.approx(0.5, abs=0.1)

    tone_server.script = ToneScript(api_key=KEY, frequency_hz=660.0)
    await hear_660_hz(daemon, recorder, "Next, please.")


async def test_a_silent_cloud_falls_back_to_the_local_synthesizer(
    tone_server: ToneServer, start_daemon: StartDaemon
) -> None:
    tone_server.script = ToneScript(api_key=KEY, never_answer=True)
    daemon = await start_daemon(fallback="local")
    said = await asyncio.wait_for(
        run_cli(daemon.config, daemon.env, "say", "--wait", "Hello from the local voice."),
        LOCAL_TIMEOUT,
    )
    assert said.returncode == 0, said.stderr + daemon.log
    (call,) = tone_server.calls
    assert call.responses == []  # the cloud was asked first, and said nothing
    state = await status_of(daemon)
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["fallbacks"], counters["errors"]) == (1, 0)
    assert "speaking through the local synthesizer" in daemon.log


# --- text the service sends before its audio ------------------------------------------------


async def test_text_sent_ahead_of_its_audio_is_published_when_that_audio_plays(
    tone_server: ToneServer, start_daemon: StartDaemon
) -> None:
    daemon = await start_daemon()
    tone_server.script = ToneScript(
        api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.3, text_only_first=True
    )
    async with Client(daemon.socket) as client, Listener(client) as listener:
        reply = await asyncio.wait_for(client.say(pieces(TEXT), wait=True), TIMEOUT)
        events = await listener.until("finished", reply.utterance_id)

    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["queued", "started"]
    assert kinds[-1] == "finished"
    texts = of(events, reply.utterance_id, "text")
    assert " ".join(str(e["text"]) for e in texts).split() == TEXT.split()
    # Each text is published when its audio is heard: no sooner after the first sample
    # than where its audio starts (the server sent it 0.3 s or more before that audio),
    # give or take how late the `started` mark itself was published on a busy machine.
    started = events[1]
    for event in texts:
        start_ms = event["start_ms"]
        assert isinstance(start_ms, int)
        assert isinstance(event["time"], float)
        assert isinstance(started["time"], float)
        assert event["time"] - started["time"] >= start_ms / 1000 - 0.25
    assert texts[0]["start_ms"] == 0


async def test_a_stopped_utterance_reports_the_text_heard_from_text_sent_ahead(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon()
    tone_server.script = ToneScript(api_key=KEY, realtime_factor=2.0, text_only_first=True)
    start_index = recorder.sample_count()
    async with Client(daemon.socket) as client, Listener(client) as listener:
        said = await run_cli(daemon.config, daemon.env, "say", LONG)
        assert said.returncode == 0, said.stderr
        await heard_at_least(recorder, start_index, 1500)
        stopped = await run_cli(daemon.config, daemon.env, "stop")
        assert stopped.returncode == 0, stopped.stderr
        events = await listener.until("cancelled")

    heard_text = str(events[-1]["text"])
    assert heard_text.startswith("Sentence number 0 keeps the speaker busy for a while.")
    assert LONG.startswith(heard_text)
    assert len(heard_text) < len(LONG)


async def test_a_piece_with_nothing_to_say_is_passed_over_quietly(
    tone_server: ToneServer, start_daemon: StartDaemon
) -> None:
    daemon = await start_daemon()
    tone_server.script = ToneScript(api_key=KEY, unspeakable_pieces=frozenset({0}))
    async with Client(daemon.socket) as client, Listener(client) as listener:
        reply = await asyncio.wait_for(client.say(pieces(TEXT), wait=True), TIMEOUT)
        events = await listener.until("finished", reply.utterance_id)

    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert len(call.texts) > 1
    _unspeakable, *rest = call.texts
    texts = [str(e["text"]) for e in of(events, reply.utterance_id, "text")]
    assert texts == [text.strip() for text in rest]
    samples = len(tone_server.expected_pcm(rest, RATE)) // 2
    assert reply.played_ms == samples * 1000 // RATE
    assert not of(events, reply.utterance_id, "error")
