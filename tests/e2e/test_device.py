"""End to end: the sound device comes back. The sound server is killed under a running
daemon and started again 3 s later in the same runtime directory; the daemon notices,
says so in `status`, reopens the device and speaks the next utterance without a restart.
The same for the local synthesizer's child process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from tests.e2e.common import (
    KEY,
    TIMEOUT,
    heard_and_quiet,
    heard_at_least,
    killed_at_exit,
    record_until,
    sound_s,
    status_of,
)
from tests.harness.daemon import Daemon, Daemons, run_cli, spawn_cli
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.slow_sink import SlowToStart
from tests.harness.tone_server import ToneServer

AWAY_S = 3.0
"""Seconds the sound server stays dead: the fault this module injects."""
MS_PER_CHAR = 40.0
"""The tone server's default: 40 ms of tone per character."""
LONG = "Once upon a time there was a speaker that lost its sound server halfway. " * 2
"""About 5.8 s of tone: long enough to be cut in the middle."""
SHORT = "The device is back, and so am I."
"""About 1.3 s of tone."""


async def until_status(daemon: Daemon, key: str, value: object) -> dict[str, object]:
    """`status` once its `key` is `value` (polled: the daemon has no event for it); an
    AssertionError with the last status and the daemon's log after TIMEOUT."""
    status: dict[str, object] = {}
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                status = await status_of(daemon)
                if status[key] == value:
                    return status
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(
            f"{key} not {value!r} within {TIMEOUT:g} s; last status {status}\n{daemon.log}"
        ) from None


async def device_names(daemon: Daemon) -> str:
    result = await run_cli(daemon.config, daemon.env, "devices")
    assert result.returncode == 0, result.stderr
    return result.stdout


async def restart_after(pulse: PulseServer, killed_at: float) -> Recorder:
    """Start the server again AWAY_S after it was killed; a recorder on it."""
    await asyncio.sleep(max(0.0, killed_at + AWAY_S - time.monotonic()))
    await asyncio.to_thread(pulse.restart)
    recorder = Recorder(pulse)
    await asyncio.to_thread(recorder.start)
    return recorder


async def test_the_sound_server_dying_mid_utterance(
    own_pulse: PulseServer, own_daemons: Daemons, tone_server: ToneServer
) -> None:
    daemon = await own_daemons.start(tone_server.address, KEY)
    with Recorder(own_pulse) as before:
        start = before.sample_count()
        proc = await spawn_cli(daemon.config, daemon.env, "say", "--wait", LONG)
        async with killed_at_exit(proc):
            await heard_at_least(before, start, 1000)
            heard_before = sound_s(before.samples()[start:])
            own_pulse.kill()
            killed_at = time.monotonic()
            status = await until_status(daemon, "device_state", "lost")
            assert "audio" in str(status["last_error"]), status
            assert "pulse" not in await device_names(daemon)  # the list as it is now
            recorder = await restart_after(own_pulse, killed_at)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
                # The listener gets the rest of the text, from where the server died (less
                # what the dead server had buffered, a few tens of ms).
                assert proc.returncode == 0, err.decode() + daemon.log
                rest = len(LONG) * MS_PER_CHAR / 1000 - heard_before
                heard = await record_until(recorder, heard_and_quiet(rest - 0.3, 0.3))
                assert sound_s(heard) < rest + 0.3
                await until_status(daemon, "device_state", "ok")
                # The next utterance plays, without a restart of the daemon.
                start = recorder.sample_count()
                result = await run_cli(daemon.config, daemon.env, "say", "--wait", SHORT)
                assert result.returncode == 0, result.stderr + daemon.log
                await record_until(recorder, heard_and_quiet(1.0, 0.2, since=start))
            finally:
                recorder.stop()
    assert "pulse" in await device_names(daemon)
    assert daemon.log.count("audio device lost") == 1, daemon.log
    assert "audio device back" in daemon.log


async def test_an_utterance_asked_while_the_server_is_away_waits_for_it(
    own_pulse: PulseServer, own_daemons: Daemons, tone_server: ToneServer
) -> None:
    # The stream is closed after 200 ms of silence: the loss is seen only when the
    # utterance wakes it.
    daemon = await own_daemons.start(tone_server.address, KEY, audio={"idle_stop_ms": 200})
    await until_status(daemon, "stream", "idle")
    own_pulse.kill()
    killed_at = time.monotonic()
    proc = await spawn_cli(daemon.config, daemon.env, "say", "--wait", SHORT)
    async with killed_at_exit(proc):
        status = await until_status(daemon, "device_state", "lost")
        assert "cannot open audio device" in str(status["last_error"])
        recorder = await restart_after(own_pulse, killed_at)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
            assert proc.returncode == 0, err.decode() + daemon.log
            await record_until(recorder, heard_and_quiet(1.0, 0.2))
        finally:
            recorder.stop()
    status = await status_of(daemon)
    assert (status["device_state"], status["last_error"]) == ("ok", "")
    assert "pulse" in await device_names(daemon)


async def test_an_utterance_fails_with_the_reason_when_the_device_stays_away(
    own_pulse: PulseServer, own_daemons: Daemons, tone_server: ToneServer
) -> None:
    daemon = await own_daemons.start(tone_server.address, KEY, audio={"device_wait_s": 1.0})
    own_pulse.kill()
    await until_status(daemon, "device_state", "lost")
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", SHORT)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the audio device was lost" in lines[0]
    assert "not back within 1 s" in lines[0]
    own_pulse.restart()
    await until_status(daemon, "device_state", "ok")


async def test_a_sink_slow_to_start_every_stream_plays_every_utterance_in_full(
    own_pulse: PulseServer, own_daemons: Daemons, tone_server: ToneServer
) -> None:
    """A waking sink: the sound server freezes for 1.5 s whenever a stream appears. The
    stream closes after 200 ms of silence, so each utterance opens a new one."""
    with Recorder(own_pulse) as recorder, SlowToStart(own_pulse, 1.5) as slow:
        daemon = await own_daemons.start(tone_server.address, KEY, audio={"idle_stop_ms": 200})
        for turn in (1, 2):
            await until_status(daemon, "stream", "idle")
            await asyncio.to_thread(slow.wait_asleep)
            start = recorder.sample_count()
            result = await run_cli(daemon.config, daemon.env, "say", "--wait", SHORT)
            assert result.returncode == 0, result.stderr + daemon.log + "\n".join(slow.history)
            await asyncio.to_thread(slow.wait_frozen, turn + 1, TIMEOUT)  # the start-up's too
            await record_until(
                recorder, heard_and_quiet(len(SHORT) * MS_PER_CHAR / 1000 - 0.1, 0.2, since=start)
            )
    status = await status_of(daemon)
    assert status["device_state"] == "ok", status
    # Usually no loss at all. On a loaded machine, a stream started right after one that
    # PortAudio gave up on can end once by itself (its thread's clean-up is PortAudio's
    # own): recovered at once, without an utterance cut, and never twice.
    assert daemon.log.count("audio device back") <= 1, daemon.log + "\n".join(slow.history)
    assert "did not start within" not in daemon.log, daemon.log


def _child_of(daemon: Daemon) -> int:
    """The PID of the daemon's `serve-local` child."""
    assert daemon.proc is not None
    children = Path(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children").read_text()
    for pid in children.split():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"serve-local" in cmdline:
            return int(pid)
    raise AssertionError(f"no serve-local child among {children!r}")


async def test_utterances_wait_for_a_restarted_local_synthesizer(
    daemons: Daemons, recorder: Recorder
) -> None:
    daemon = await daemons.start(None, None)
    say = ("say", "--wait", "Hello again.")
    local_timeout = 60.0  # the voice loads in a few seconds, twice here
    first = await asyncio.wait_for(run_cli(daemon.config, daemon.env, *say), local_timeout)
    assert first.returncode == 0, first.stderr + daemon.log
    os.kill(_child_of(daemon), signal.SIGKILL)
    # Asked for at once, while the child is being restarted: it waits instead of failing.
    start = recorder.sample_count()
    again = await asyncio.wait_for(run_cli(daemon.config, daemon.env, *say), local_timeout)
    assert again.returncode == 0, again.stderr + daemon.log
    await record_until(recorder, heard_and_quiet(0.3, 0.2, since=start), within=local_timeout)
    assert "the local synthesizer exited with code -9" in daemon.log
