"""End to end, issue 12 item 7: an LLM's markdown, a terminal's escape sequences and bidi
controls reach the service as plain words and are heard; markup alone is refused in one
line, and never reaches the service."""

from __future__ import annotations

import asyncio
import re

import pytest

from player.control.client import Client
from tests.e2e.common import (
    TIMEOUT,
    Listener,
    heard_and_quiet,
    pieces,
    record_until,
    sound_s,
)
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneServer

ANSWER = (
    "## Plan\n"
    "- **Install** `speechkit-player` from [PyPI](https://pypi.org/project/x/)\n"
    "- Build the C++ part: \x1b[1;31mred\x1b[0m \u202eand\u202c done.\n"
)
SENT = "Plan. Install speechkit-player from PyPI. Build the C plus plus part: red and done."
# What SpeechKit would read as markup, and what must never be sent at all.
NOT_PLAIN = re.compile("[+*`#\\[\\]<>\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


async def test_markdown_escapes_and_bidi_reach_the_service_as_plain_words(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()

    result = await run_cli(daemon.config, daemon.env, "say", "--wait", ANSWER)

    assert result.returncode == 0, result.stderr
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    sent = "".join(call.texts)
    assert " ".join(sent.split()) == SENT
    assert not NOT_PLAIN.search(sent), sent
    # The tone lasts as long as the text the server was given: all of it was heard.
    seconds = len(sent) * tone_server.script.ms_per_char / 1000
    recording = await record_until(recorder, heard_and_quiet(seconds * 0.9, since=start))
    assert sound_s(recording[start:]) == pytest.approx(seconds, rel=0.1)


async def test_markup_alone_is_refused_in_one_line_whole_or_streamed(
    tone_server: ToneServer, daemon: Daemon
) -> None:
    cases = [
        (["say", "--wait", "**"], None),
        (["say", "--wait", "\x1b[0m \u202e --- sil<[300]>"], None),
        (["say", "--wait", "-"], b"**\n- \n```\n```\n"),
    ]
    for args, stdin in cases:
        result = await run_cli(daemon.config, daemon.env, *args, stdin=stdin)
        assert result.returncode == 1, (args, result)
        assert "nothing to say: the text has only markup" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert tone_server.calls == []
    ok = await run_cli(daemon.config, daemon.env, "say", "--wait", "**Fine** again.")
    assert ok.returncode == 0, ok.stderr
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert "".join(call.texts) == "Fine again. "


async def test_a_stream_that_turns_out_to_be_markup_ends_without_error(
    tone_server: ToneServer, daemon: Daemon
) -> None:
    # "sil" looks like a word until the rest makes it a pause mark: the utterance has
    # started, and ends having played nothing.
    async with Client(daemon.socket) as client, Listener(client) as listener:
        reply = await asyncio.wait_for(
            client.say(pieces("sil", "<[300]>", " **"), wait=True), TIMEOUT
        )
        events = await listener.until("cancelled", reply.utterance_id)
    assert reply.played_ms == 0
    assert events[-1]["reason"] == "nothing to speak in its text"
    assert all(not call.texts for call in tone_server.calls)
