"""End to end: while the daemon speaks, its stream on the sound server carries the
configured `media.role` ("announcement" unless configured; none for ""), which is what
PulseAudio's role ducking and WirePlumber's role policy match on. Asked of the server
itself with `pactl list sink-inputs`, the daemon's stream picked out by its process id.
And what it is for: with module-role-ducking loaded, music on the same sink is heard to
drop while the daemon speaks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Recording,
    heard_at_least,
    killed_at_exit,
    record_until,
    sound_s,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, spawn_cli
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneServer

LONG = "A long announcement, so that the stream is still playing when it is looked at. " * 2
"""About 6.5 s of tone at the tone server's 40 ms per character."""
POLL_S = 0.1
"""Seconds between looks at the server's streams."""

Properties = dict[str, str]


async def sink_inputs(pulse: PulseServer) -> list[dict[str, object]]:
    """`pactl list sink-inputs`, as JSON."""
    proc = await asyncio.create_subprocess_exec(
        "pactl",
        "--format=json",
        "list",
        "sink-inputs",
        env=pulse.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with killed_at_exit(proc):
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    found = json.loads(out)
    assert isinstance(found, list)
    return found


async def stream_of(pulse: PulseServer, daemon: Daemon) -> Properties:
    """The properties of the daemon's playback stream, once the server lists it."""
    assert daemon.proc is not None
    pid = str(daemon.proc.pid)
    async with asyncio.timeout(TIMEOUT):
        while True:
            for entry in await sink_inputs(pulse):
                properties = entry.get("properties")
                assert isinstance(properties, dict)
                if properties.get("application.process.id") == pid:
                    return {str(k): str(v) for k, v in properties.items()}
            await asyncio.sleep(POLL_S)


async def role_while_speaking(
    daemons: Daemons,
    pulse: PulseServer,
    recorder: Recorder,
    tone_server: ToneServer,
    **audio: object,
) -> str | None:
    """Start a daemon with `audio` in its [audio] table, have it speak LONG, and return
    its stream's media.role (None without one) once the speech is heard."""
    daemon = await daemons.start(tone_server.address, KEY, audio=audio)
    start = recorder.sample_count()
    proc = await spawn_cli(daemon.config, daemon.env, "say", "--wait", LONG)
    async with killed_at_exit(proc):
        await heard_at_least(recorder, start, 500)
        properties = await stream_of(pulse, daemon)
        # Still speaking: the stream looked at is the one playing the utterance.
        assert proc.returncode is None, "the utterance ended before the stream was seen"
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
    return properties.get("media.role")


@pytest.mark.parametrize(
    ("audio", "role"),
    [
        pytest.param({}, "announcement", id="default"),
        pytest.param({"media_role": "music"}, "music", id="configured"),
        pytest.param({"media_role": ""}, None, id="none"),
    ],
)
async def test_media_role(
    daemons: Daemons,
    pulse: PulseServer,
    recorder: Recorder,
    tone_server: ToneServer,
    audio: dict[str, object],
    role: str | None,
) -> None:
    assert await role_while_speaking(daemons, pulse, recorder, tone_server, **audio) == role


# --- What the role is for: PulseAudio's module-role-ducking ---------------------------------

MUSIC_HZ = 1000.0
"""The music stream's tone; the tone server speaks at 440 Hz, far enough apart to measure
each on its own while both play."""
SPEECH_HZ = 440.0
MUSIC_AMPLITUDE = 0.2
MUSIC_S = 60.0
"""Seconds of music in the file pacat plays: more than the test takes."""
WINDOW_S = 0.3
"""Seconds of recording one level is measured on."""
WINDOW = round(WINDOW_S * RATE)
SPOKEN = "The music goes down while this is said, and comes back up afterwards."
"""About 2.8 s of tone."""


def level(x: Recording, hz: float) -> float:
    """The strength of the `hz` component of the recording's last WINDOW_S (Hann window,
    the largest FFT bin near it): comparable between windows, whatever else plays."""
    window = x[-WINDOW:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    k = round(hz * len(window) / RATE)
    return float(spectrum[k - 2 : k + 3].max())


async def pactl(pulse: PulseServer, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "pactl",
        *args,
        env=pulse.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with killed_at_exit(proc):
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()


@contextlib.asynccontextmanager
async def music(pulse: PulseServer, folder: Path) -> AsyncIterator[None]:
    """pacat playing a MUSIC_HZ tone as a stream with media.role "music"."""
    path = folder / "music.raw"
    samples = aa.tone(MUSIC_HZ, MUSIC_S, RATE, MUSIC_AMPLITUDE) * 32767
    path.write_bytes(samples.astype("<i2").tobytes())
    with path.open("rb") as source:
        proc = await asyncio.create_subprocess_exec(
            "pacat",
            "--playback",
            "--raw",
            f"--rate={RATE}",
            "--channels=1",
            "--format=s16le",
            "--property=media.role=music",
            env=pulse.env,
            stdin=source,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    async with killed_at_exit(proc):
        yield


@pytest.mark.parametrize(
    ("role", "ducked"),
    [pytest.param("announcement", True, id="announcement"), pytest.param("", False, id="none")],
)
async def test_music_is_ducked_while_the_daemon_speaks(
    own_pulse: PulseServer,
    own_daemons: Daemons,
    tone_server: ToneServer,
    tmp_path: Path,
    role: str,
    ducked: bool,
) -> None:
    """With module-role-ducking told to duck music under announcements, music playing on
    the same sink drops (by its -20 dB) while the daemon's stream is open, speech and all,
    and comes back once the stream closes, idle_stop_ms after the speech; a daemon that
    announces no role leaves the music alone."""
    await pactl(
        own_pulse,
        "load-module",
        "module-role-ducking",
        "trigger_roles=announcement",
        "ducking_roles=music",
        "volume=-20dB",
    )
    with Recorder(own_pulse) as recorder:
        async with music(own_pulse, tmp_path):
            x = await record_until(recorder, lambda x: sound_s(x) >= 1.0)
            full = level(x, MUSIC_HZ)

            daemon = await own_daemons.start(
                tone_server.address, KEY, audio={"media_role": role, "idle_stop_ms": 300}
            )
            proc = await spawn_cli(daemon.config, daemon.env, "say", "--wait", SPOKEN)
            async with killed_at_exit(proc):
                # The speech is heard: its tone, at 2.5 times the music's amplitude, is
                # louder in the last window than the music was at full level.
                x = await record_until(recorder, lambda x: level(x, SPEECH_HZ) > full)
                # Two windows on: the stream opened with the speech (idle_stop_ms closed
                # it after start-up), and the change reaches the sink's output late.
                heard = len(x)
                x = await record_until(recorder, lambda x: len(x) >= heard + 2 * WINDOW)
                assert level(x, SPEECH_HZ) > full, "the speech ended before the music was measured"
                during = level(x, MUSIC_HZ)
                _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
                assert proc.returncode == 0, err.decode()

            if ducked:
                assert during < 0.3 * full, (during, full)
                # Undone once the stream is closed, idle_stop_ms after the speech.
                await record_until(recorder, lambda x: level(x, MUSIC_HZ) > 0.7 * full)
            else:
                assert during > 0.7 * full, (during, full)
