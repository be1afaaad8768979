"""End to end: the real daemon and CLI, the tone server as SpeechKit, PulseAudio's null
sink as the sound card, and parec recording what was actually played."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from player.control.client import Client
from player.generated.speechkit.tts.v3 import tts_pb2
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    closed_port,
    heard_and_quiet,
    killed_at_exit,
    record_until,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, spawn_cli, write_config
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneScript, ToneServer

ANNOUNCEMENT = (
    "Attention, please. The museum closes in fifteen minutes. "
    "Please make your way to the nearest exit."
)
LONG_TEXT = "This is a long announcement that keeps on going for quite a while. " * 3

StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, realtime_factor=2.0, first_chunk_delay=0.05)


@pytest.fixture
async def start_daemon(tone_server: ToneServer, daemons: Daemons) -> StartDaemon:
    """Starts a daemon like the shared `daemon` fixture, but inside the test, after it has
    chosen its key, endpoint and config sections (and its tone script)."""

    async def start(
        *, api_key: str | None = KEY, endpoint: str | None = None, **sections: dict[str, object]
    ) -> Daemon:
        return await daemons.start(endpoint or tone_server.address, api_key, **sections)

    return start


def sound_for(seconds: float, after: int = 0) -> Callable[[np.ndarray], bool]:
    def check(x: np.ndarray) -> bool:
        spans = aa.sound_spans(x[after:], RATE)
        return any(end - start >= seconds * RATE for start, end in spans)

    check.__name__ = f"a sound of {seconds:.2f} s"
    return check


async def test_announcement_is_heard_in_full_while_it_is_synthesised(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    tone_server.script = ToneScript(api_key=KEY, realtime_factor=1.5, first_chunk_delay=0.2)
    daemon = await start_daemon()
    start_index = recorder.sample_count()

    result = await run_cli(daemon.config, daemon.env, "say", "--wait", ANNOUNCEMENT)
    returned = time.monotonic()

    assert result.returncode == 0, result.stderr
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    expected = len(call.audio) / 2 / RATE
    assert expected > 3.0  # three sentences
    x = (await record_until(recorder, heard_and_quiet(expected - 0.05)))[start_index:]
    spans = aa.sound_spans(x, RATE)
    assert len(spans) == 1, (
        f"sound spans (ms): {[(a * 1000 // RATE, b * 1000 // RATE) for a, b in spans]}\n"
        f"{daemon.log}"
    )
    span = spans[0]
    heard = x[span[0] : span[1]]
    assert len(heard) / RATE == pytest.approx(expected, abs=0.03)
    assert aa.dominant_frequency(heard, RATE) == pytest.approx(440.0, abs=2.0)
    longest_gap = max((length for _, length in aa.gaps(heard, RATE)), default=0)
    assert longest_gap <= 0.010 * RATE, f"a {longest_gap / RATE * 1000:.1f} ms gap"

    first_heard = recorder.arrival_time(start_index + span[0])
    assert call.finished_at is not None
    assert first_heard < call.finished_at - 1.0, "playback waited for the synthesis to end"
    # arrival_time is an upper bound on when a sample played, so the last sample played
    # no later than first_heard + expected; --wait must not return before that.
    assert returned >= first_heard + expected - 0.05
    assert returned <= recorder.arrival_time(start_index + span[1] - 1) + 1.0
    assert "played" in result.stdout

    options = call.options
    assert options is not None
    assert options.output_audio_spec.raw_audio.audio_encoding == tts_pb2.RawAudio.LINEAR16_PCM
    assert options.output_audio_spec.raw_audio.sample_rate_hertz == RATE
    assert call.metadata["authorization"] == f"Api-Key {KEY}"
    assert call.metadata.get("x-client-request-id")
    assert call.texts
    assert all(text.endswith(" ") for text in call.texts)
    assert KEY not in daemon.log


async def test_stream_cut_midway_fails_that_utterance_only(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon()
    tone_server.script = ToneScript(api_key=KEY, abort_after_bytes=RATE)  # 0.5 s of audio
    failed = await run_cli(daemon.config, daemon.env, "say", "--wait", LONG_TEXT)
    assert failed.returncode == 1
    assert "unavailable" in failed.stderr.lower()
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert daemon.alive

    tone_server.script = ToneScript(api_key=KEY, frequency_hz=660.0)
    before = recorder.sample_count()
    ok = await run_cli(daemon.config, daemon.env, "say", "--wait", "Next, please.")
    assert ok.returncode == 0, ok.stderr
    x = (await record_until(recorder, sound_for(0.4, after=before)))[before:]
    start, end = aa.sound_spans(x, RATE)[-1]
    assert aa.dominant_frequency(x[start:end], RATE) == pytest.approx(660.0, abs=3.0)

    status = json.loads((await run_cli(daemon.config, daemon.env, "status")).stdout)
    assert status["counters"]["errors"] == 1
    assert status["counters"]["utterances"] == 1
    assert "unavailable" in status["last_error"].lower()


async def test_wrong_key_reads_as_authentication_and_is_never_shown(
    start_daemon: StartDaemon,
) -> None:
    wrong = "wrong-key-0a1b2c3d4e5f"
    daemon = await start_daemon(api_key=wrong)
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
    assert result.returncode == 1
    assert "authentication failed" in result.stderr
    assert "Traceback" not in result.stderr
    status = await run_cli(daemon.config, daemon.env, "status")
    assert "authentication failed" in status.stdout
    for text in (result.stdout, result.stderr, status.stdout, daemon.log):
        assert wrong not in text
        assert KEY not in text


async def test_streamed_say_fails_while_its_input_is_still_open(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(api_key="wrong-key-for-stream")
    proc = await spawn_cli(daemon.config, daemon.env, "say", "-")
    assert proc.stdin is not None
    assert proc.stderr is not None
    async with killed_at_exit(proc):
        proc.stdin.write(b"A producer that keeps writing.\n")
        await proc.stdin.drain()
        # stdin stays open: the error must arrive anyway, and the client must exit.
        err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 1
    assert "authentication failed" in err.decode()


async def test_stop_silences_within_250_ms_and_the_daemon_keeps_serving(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    tone_server.script = ToneScript(api_key=KEY, realtime_factor=1.2)
    daemon = await start_daemon()
    before = recorder.sample_count()
    queued = await run_cli(daemon.config, daemon.env, "say", LONG_TEXT)
    assert queued.returncode == 0, queued.stderr
    await record_until(recorder, sound_for(0.5, after=before))

    async with Client(daemon.socket) as client:
        asked = time.monotonic()
        reply = await asyncio.wait_for(client.stop(), TIMEOUT)
    assert reply.cancelled == 1

    x = (await record_until(recorder, heard_and_quiet(0.5, quiet_s=0.3)))[before:]
    start, end = aa.sound_spans(x, RATE)[-1]
    silent_by = recorder.arrival_time(before + end - 1)
    assert silent_by - asked < 0.250
    assert (end - start) / RATE < len(LONG_TEXT) * 0.040 / 2  # it really was cut short
    # A fade, not a click: the last millisecond is far quieter than the tone.
    tail = np.abs(x[end - RATE // 1000 : end].astype(np.int32)).max()
    assert tail < 0.5 * 0.5 * 32768

    stopped = await run_cli(daemon.config, daemon.env, "stop")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    after = await run_cli(daemon.config, daemon.env, "say", "--wait", "Still here.")
    assert after.returncode == 0, after.stderr


async def test_stdin_is_spoken_as_it_arrives(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon()
    before = recorder.sample_count()
    proc = await spawn_cli(daemon.config, daemon.env, "say", "--wait", "-")
    assert proc.stdin is not None
    async with killed_at_exit(proc):
        proc.stdin.write(b"The first sentence comes at once.\n")
        await proc.stdin.drain()
        # Heard while the producer is still writing: stdin is not closed yet.
        await record_until(recorder, sound_for(0.3, after=before))
        proc.stdin.write("Then the second, with ünïcode.\n".encode())
        proc.stdin.close()
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert "".join(call.texts).split() == (
        [
            "The",
            "first",
            "sentence",
            "comes",
            "at",
            "once.",
            "Then",
            "the",
            "second,",
            "with",
            "ünïcode.",
        ]
    )
    assert len(call.texts) >= 2


async def test_bad_input_gets_one_clear_line_and_the_daemon_keeps_serving(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon()
    cases = [
        ((["say", "--wait", "   "], None), "nothing to say"),
        ((["say", "--wait", "-"], b"caf\xc3 \xff\xfe oops\n"), "not valid UTF-8"),
    ]
    for (args, stdin), expected in cases:
        result = await run_cli(daemon.config, daemon.env, *args, stdin=stdin)
        assert result.returncode == 1, (args, result)
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    ok = await run_cli(daemon.config, daemon.env, "say", "--wait", "Fine again.")
    assert ok.returncode == 0, ok.stderr


async def test_unknown_voice_is_reported_from_the_service(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon(voice={"voice": "nobody"})
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
    assert result.returncode == 1
    assert "SpeechKit rejected the request" in result.stderr
    assert "nobody" in result.stderr


async def test_unreachable_endpoint_is_named(start_daemon: StartDaemon) -> None:
    endpoint = closed_port()
    daemon = await start_daemon(endpoint=endpoint, speechkit={"connect_timeout": 1.0})
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
    assert result.returncode == 1
    assert f"unavailable ({endpoint})" in result.stderr
    assert daemon.alive


async def test_speech_comes_back_when_the_endpoint_does(
    tone_server: ToneServer, start_daemon: StartDaemon
) -> None:
    # Longer than the daemon's longest reconnect backoff (2 s), as the default (5 s) is.
    daemon = await start_daemon(speechkit={"connect_timeout": 3.0})
    assert (await run_cli(daemon.config, daemon.env, "say", "--wait", "One.")).returncode == 0
    address = tone_server.address
    await tone_server.stop()
    down = await run_cli(daemon.config, daemon.env, "say", "--wait", "Two.")
    assert down.returncode == 1
    assert "unavailable" in down.stderr
    await tone_server.start(address)
    back = await run_cli(daemon.config, daemon.env, "say", "--wait", "Three.")
    assert back.returncode == 0, back.stderr


async def test_status_and_devices(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon()
    status = await run_cli(daemon.config, daemon.env, "status")
    assert status.returncode == 0
    state = json.loads(status.stdout)
    assert state["state"] == "idle"
    assert state["sample_rate"] == RATE
    assert state["device"] == "pulse"
    assert state["queue_length"] == 0
    assert set(state["counters"]) >= {"utterances", "underruns", "errors"}
    assert state["stream"] == "running"  # idle_stop_ms has not passed yet
    devices = await run_cli(daemon.config, daemon.env, "devices")
    assert devices.returncode == 0
    assert "pulse" in devices.stdout
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o660


async def test_missing_audio_device_is_named_at_start(tmp_path: Path, pulse: PulseServer) -> None:
    config = write_config(tmp_path, "127.0.0.1:1", api_key=KEY, audio={"device": "no-such-card"})
    result = await run_cli(config, clean_env(pulse.env), "daemon")
    assert result.returncode == 1
    assert "audio device 'no-such-card' is not available" in result.stderr
    assert "Traceback" not in result.stderr


async def test_sigterm_while_speaking_fades_and_exits_cleanly(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    tone_server.script = ToneScript(api_key=KEY, realtime_factor=1.2)
    daemon = await start_daemon()
    before = recorder.sample_count()
    assert (await run_cli(daemon.config, daemon.env, "say", LONG_TEXT)).returncode == 0
    await record_until(recorder, sound_for(0.3, after=before))
    assert await daemon.stop() == 0
    assert not daemon.socket.exists()
    await record_until(recorder, heard_and_quiet(0.3, quiet_s=0.3))


async def test_client_without_a_daemon_says_so(tmp_path: Path, pulse: PulseServer) -> None:
    config = write_config(tmp_path, "127.0.0.1:1", api_key=None)
    result = await run_cli(config, clean_env(pulse.env), "say", "Hello.")
    assert result.returncode == 1
    assert str(tmp_path / "control.sock") in result.stderr
    assert "running" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_an_idle_stream_stops_and_the_next_utterance_is_heard_in_full(
    tone_server: ToneServer, start_daemon: StartDaemon, recorder: Recorder
) -> None:
    tone_server.script = ToneScript(api_key=KEY, realtime_factor=1.5, first_chunk_delay=0.1)
    daemon = await start_daemon(audio={"idle_stop_ms": 300})
    first = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
    assert first.returncode == 0, first.stderr
    async with asyncio.timeout(TIMEOUT):
        while (await status_of(daemon))["stream"] != "idle":
            pass  # each status is a round trip to the daemon; the timeout bounds the loop
    start_index = recorder.sample_count()

    result = await run_cli(daemon.config, daemon.env, "say", "--wait", ANNOUNCEMENT)

    assert result.returncode == 0, result.stderr
    call = (await tone_server.wait_calls(2, TIMEOUT))[1]
    expected = len(call.audio) / 2 / RATE
    x = (await record_until(recorder, heard_and_quiet(expected - 0.05)))[start_index:]
    spans = aa.sound_spans(x, RATE)
    assert len(spans) == 1, [(a * 1000 // RATE, b * 1000 // RATE) for a, b in spans]
    assert (spans[0][1] - spans[0][0]) / RATE == pytest.approx(expected, abs=0.03)
    latency = (await status_of(daemon))["chunk_latency_ms"]
    assert isinstance(latency, dict)
    assert latency["chunks"] > 0
