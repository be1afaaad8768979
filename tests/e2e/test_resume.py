"""End to end, issue 12: a SpeechKit call that breaks off with a transient error is
resumed by a new call from the sentence it cut, while the audio already received plays
on. Each sentence has its own pitch, so the recording tells which were heard, in which
order, and whether whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grpc
import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    Listener,
    Recording,
    heard_and_quiet,
    of,
    record_until,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tcp_proxy import ResetPlan, TcpProxy
from tests.harness.tone_server import ToneScript, ToneServer
from tests.harness.tone_synth import piece_samples

SENTENCES = ["Alpha speaks first.", "Bravo comes second.", "Charlie is third.", "Delta ends it."]
TEXT = " ".join(SENTENCES)
HZ = [300.0, 450.0, 600.0, 800.0]
PITCHES = tuple(
    (word.strip("."), hz)
    for sentence, hz in zip(SENTENCES, HZ, strict=True)
    for word in sentence.split()
)
"""Every word of a sentence has its pitch: the daemon may send a sentence in pieces."""
MS_PER_CHAR = 20.0
TONE_RMS = 0.5 / 2**0.5
"""The tone server's sines at their default amplitude (0.5 of full scale)."""
WINDOW_MS = 20.0
"""The pitch is read per window of this length; a join may blur one window either side."""


def samples(text: str) -> int:
    return piece_samples(len(text), MS_PER_CHAR, RATE)


MID_SECOND = 2 * (samples(SENTENCES[0] + " ") + samples(SENTENCES[1] + " ") // 2)
"""Bytes of audio into the first call at which it breaks off: half way through Bravo."""


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, ms_per_char=MS_PER_CHAR, frequencies=PITCHES)


def pitch_runs(x: Recording) -> list[tuple[float, float]]:
    """(pitch, seconds) of each stretch of one sentence's tone, silence ending one."""
    window = int(RATE * WINDOW_MS / 1000)
    runs: list[tuple[float, float]] = []
    last: float | None = None
    for at in range(0, len(x) - window + 1, window):
        part = x[at : at + window]
        if aa.rms(part) < 0.7 * TONE_RMS:  # silence, or mostly: a fade reads as any pitch
            last = None
            continue
        found = aa.dominant_frequency(part, RATE)
        hz = min(HZ, key=lambda f: abs(f - found))
        if hz == last:
            runs[-1] = (hz, runs[-1][1] + WINDOW_MS / 1000)
        else:
            runs.append((hz, WINDOW_MS / 1000))
        last = hz
    return runs


def whole(sentence: str) -> float:
    """Seconds of a sentence's tone (its piece ends in a space)."""
    return samples(sentence + " ") / RATE


async def say_and_record(daemon: Daemon, recorder: Recorder, heard_s: float) -> Recording:
    start = recorder.sample_count()
    said = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)
    assert said.returncode == 0, said.stderr + daemon.log
    return (await record_until(recorder, heard_and_quiet(heard_s, 0.3, since=start)))[start:]


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ],
)
async def test_a_stream_aborted_mid_sentence_is_heard_whole_each_sentence_once_in_order(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder, code: grpc.StatusCode
) -> None:
    script = tone_server.script
    tone_server.next_scripts = [
        dataclasses.replace(script, abort_after_bytes=MID_SECOND, abort_code=code)
    ]
    total = sum(whole(s) for s in SENTENCES)
    x = await say_and_record(daemon, recorder, total - 0.05)

    await heard_each_once_after_one_resume(x, tone_server, daemon)
    assert tone_server.calls[0].status == code


async def test_a_connection_reset_mid_sentence_is_heard_whole_each_sentence_once_in_order(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder
) -> None:
    async with TcpProxy(tone_server.address) as proxy:
        # The gRPC framing adds a little to the audio's bytes: still well inside Bravo.
        proxy.plan = ResetPlan(connection=0, after_bytes=MID_SECOND)
        daemon = await daemons.start(proxy.address, KEY)
        total = sum(whole(s) for s in SENTENCES)
        x = await say_and_record(daemon, recorder, total - 0.05)
        assert proxy.resets == 1

    # What the client had not read when the reset came is lost with the connection, so
    # Bravo's text may never have reached it: then Alpha is the sentence it holds only in
    # part, and that is where it resumes. Either way each is heard once, whole.
    await heard_each_once_after_one_resume(x, tone_server, daemon, resumed_at=SENTENCES[:2])
    assert "Connection reset by peer" in daemon.log


async def heard_each_once_after_one_resume(
    x: Recording, tone_server: ToneServer, daemon: Daemon, resumed_at: Sequence[str] = ()
) -> None:
    """Every sentence was heard whole, once, in order, through two calls, the second
    from the sentence the first one cut."""
    runs = pitch_runs(x)
    assert [hz for hz, _ in runs] == HZ, runs
    for (_, seconds), sentence in zip(runs, SENTENCES, strict=True):
        assert seconds == pytest.approx(whole(sentence), abs=2.5 * WINDOW_MS / 1000)
    calls = [c for c in tone_server.calls if c.texts]  # not grpc's probe of a broken call
    assert len(calls) == 2
    # From the sentence that was cut.
    assert calls[1].texts[0].strip() in (resumed_at or SENTENCES[1:2])
    counters = (await status_of(daemon))["counters"]
    assert isinstance(counters, dict)
    assert (counters["resumed"], counters["utterances"], counters["errors"]) == (1, 1, 0)
    assert daemon.log.count("synthesis broke off") == 1


async def test_a_sentence_cut_while_playing_is_spoken_again_from_its_start(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    # At real time the ring holds only a little ahead: Bravo is playing when it breaks.
    script = dataclasses.replace(tone_server.script, realtime_factor=1.0)
    tone_server.script = script
    tone_server.next_scripts = [
        dataclasses.replace(
            script, abort_after_bytes=MID_SECOND, abort_code=grpc.StatusCode.UNAVAILABLE
        )
    ]
    total = sum(whole(s) for s in SENTENCES)
    x = await say_and_record(daemon, recorder, total)  # and what was heard of Bravo first

    runs = pitch_runs(x)
    pitches = [hz for hz, _ in runs]
    assert pitches.count(HZ[1]) == 2, runs  # Bravo, cut, then whole
    assert [hz for i, hz in enumerate(pitches) if i == 0 or pitches[i - 1] != hz] == HZ, runs
    bravo_again = [seconds for hz, seconds in runs if hz == HZ[1]][-1]
    assert bravo_again == pytest.approx(whole(SENTENCES[1]), abs=2.5 * WINDOW_MS / 1000)
    assert runs[0][1] == pytest.approx(whole(SENTENCES[0]), abs=2.5 * WINDOW_MS / 1000)
    counters = (await status_of(daemon))["counters"]
    assert isinstance(counters, dict)
    assert counters["resumed"] == 1


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


async def test_a_key_rejected_mid_retry_is_reported_not_retried(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder
) -> None:
    script = tone_server.script
    tone_server.next_scripts = [dataclasses.replace(script, abort_after_bytes=MID_SECOND)]
    tone_server.script = dataclasses.replace(script, api_key="a-key-revoked-meanwhile")
    start = recorder.sample_count()
    said = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)

    assert said.returncode == 1
    assert "authentication failed" in one_line(said.stderr)
    assert KEY not in said.stderr + daemon.log
    calls = tone_server.calls
    assert [c.status for c in calls[1:]] == [grpc.StatusCode.UNAUTHENTICATED] * (len(calls) - 1)
    assert len(calls) <= 3  # the resumed call, and at most grpc's probe of it
    assert daemon.log.count("synthesis broke off") == 1
    x = (
        await record_until(recorder, heard_and_quiet(whole(SENTENCES[0]) - 0.05, 0.3, since=start))
    )[start:]
    assert [hz for hz, _ in pitch_runs(x)] == HZ[:1]


async def test_a_cloud_that_stays_away_fails_after_retry_s_naming_the_text_heard(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder
) -> None:
    daemon = await daemons.start(tone_server.address, KEY, speechkit={"retry_s": 1.0})
    script = tone_server.script
    tone_server.next_scripts = [dataclasses.replace(script, abort_after_bytes=MID_SECOND)]
    tone_server.script = dataclasses.replace(script, abort_after_bytes=0)
    start = recorder.sample_count()
    async with Client(daemon.socket) as client, Listener(client) as listener:
        said = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)
        events = await listener.until("error")

    assert said.returncode == 1
    line = one_line(said.stderr)
    assert line.endswith("(retried for 1 s, [speechkit] retry_s)"), line
    (error,) = of(events, None, "error")
    assert error.get("text") == SENTENCES[0], f"{events}\n{daemon.log}"
    x = (
        await record_until(recorder, heard_and_quiet(whole(SENTENCES[0]) - 0.05, 0.3, since=start))
    )[start:]
    assert [hz for hz, _ in pitch_runs(x)] == HZ[:1]
    state = await status_of(daemon)
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["errors"], counters["resumed"]) == (1, 0)
    assert len(tone_server.calls) >= 2
