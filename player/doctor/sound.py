"""The sound side: the sound server answering, the configured device and its rate, and a
short quiet tone played through the product's own output, counted by its callback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from player.audio.ring import Frames
from player.doctor.checks import Check, Findings, ok, problem, skipped
from player.threads import in_thread

PULSE_PORT = 4713
"""PulseAudio's TCP port when PULSE_SERVER names a host without one."""
CONNECT_TIMEOUT = 3.0
"""Seconds the sound server's socket (and `pactl info`) may take to answer."""
DEVICE_TIMEOUT = 10.0
"""Seconds PortAudio may take to find the device, or to open and close its stream."""
TONE_MS = 300
TONE_HZ = 440.0
TONE_LEVEL = 0.1
"""Fraction of full scale: audible in the room, not startling."""
TONE_TIMEOUT = 5.0
"""Seconds the callback may take to play the tone (300 ms of it) once the stream is open."""
START_SERVER = "start PulseAudio or PipeWire (systemctl --user start pipewire-pulse)"

SOUND_SERVER, DEVICE, TONE = "sound server", "audio device", "test tone"


def pulse_address(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(where it was found, address) of the PulseAudio socket PortAudio will use:
    PULSE_SERVER's first entry, else $XDG_RUNTIME_DIR/pulse/native if it exists."""
    named = environ.get("PULSE_SERVER", "").split()
    if named:
        entry = named[0]
        if entry.startswith("{"):  # "{machine-id}address": only for that machine
            entry = entry.partition("}")[2]
        return "PULSE_SERVER", entry
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    native = Path(runtime) / "pulse" / "native"
    if runtime and native.exists():
        return "XDG_RUNTIME_DIR", f"unix:{native}"
    return None


async def _connect(address: str) -> None:
    """Open and close a connection to a PulseAudio address; raises OSError or TimeoutError."""
    if address.startswith("unix:") or address.startswith("/"):
        path = address.removeprefix("unix:")
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), CONNECT_TIMEOUT)
    else:
        host = address.removeprefix("tcp:").removeprefix("tcp4:").removeprefix("tcp6:")
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        target = (name or host, int(port) if port.isdigit() else PULSE_PORT)
        _, writer = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
    writer.close()


async def _server_name(environ: Mapping[str, str], address: str) -> str:
    """The server's name and version as `pactl info` says; "" without pactl."""
    pactl = shutil.which("pactl")
    if pactl is None:
        return ""
    proc = await asyncio.create_subprocess_exec(
        pactl, "info",
        env={**environ, "PULSE_SERVER": address},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CONNECT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return ""
    fields = dict(line.partition(": ")[::2] for line in out.decode(errors="replace").splitlines())
    return " ".join(filter(None, (fields.get("Server Name"), fields.get("Server Version"))))


def _wants_pulse(device: str | int | None) -> bool:
    return isinstance(device, str) and any(n in device.lower() for n in ("pulse", "pipewire"))


async def sound_server(found: Findings) -> Check:
    where = pulse_address(found.environ)
    if where is None:
        runtime = found.environ.get("XDG_RUNTIME_DIR", "")
        socket_at = f"nothing at {runtime}/pulse/native" if runtime else "XDG_RUNTIME_DIR not set"
        if not _wants_pulse(found.settings.audio.device):
            return skipped(
                SOUND_SERVER,
                f"none found (no PULSE_SERVER, {socket_at}); PortAudio plays through ALSA directly",
            )
        found.sound_server_failed = True
        fix = START_SERVER if runtime else "run as the user of the desktop session, or set "
        fix = fix if runtime else fix + f"XDG_RUNTIME_DIR=/run/user/{os.getuid()}"
        return problem(
            SOUND_SERVER,
            f"no PulseAudio or PipeWire socket (no PULSE_SERVER, {socket_at}), "
            f"and [audio] device is {found.settings.audio.device!r}",
            fix,
        )
    source, address = where
    try:
        await _connect(address)
    except (OSError, TimeoutError, ValueError) as err:
        found.sound_server_failed = True
        reason = "no answer" if isinstance(err, TimeoutError) else _reason(err)
        fix = START_SERVER + (", or correct PULSE_SERVER" if source == "PULSE_SERVER" else "")
        return problem(
            SOUND_SERVER,
            f"cannot connect to PulseAudio at {address} (from {source}): {reason}",
            fix,
        )
    name = await _server_name(found.environ, address)
    return ok(SOUND_SERVER, f"{name or 'PulseAudio-compatible server'} at {address}")


def _reason(err: BaseException) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


async def audio_device(found: Findings) -> Check:
    from player.audio.devices import current_output_devices, resolve_device
    from player.errors import OutputError

    if found.sound_server_failed:
        return skipped(DEVICE, "needs the sound server")
    audio = found.settings.audio
    try:
        devices = await asyncio.to_thread(current_output_devices)  # bounded: a child process
    except OutputError as err:
        return problem(DEVICE, str(err), "install PortAudio: sudo apt-get install libportaudio2")
    names = ", ".join(repr(d["name"]) for d in devices[:8]) or "none"
    try:
        device = await in_thread(lambda: resolve_device(audio), DEVICE_TIMEOUT)
    except OutputError as err:
        if not devices:
            fix = (
                "PortAudio sees no output device: start PulseAudio or PipeWire, or check "
                "the sound card (aplay -l)"
            )
        else:
            fix = f"set [audio] device to one of the output devices: {names}"
        return problem(DEVICE, str(err), fix)
    except TimeoutError:
        return problem(
            DEVICE,
            f"PortAudio did not answer within {DEVICE_TIMEOUT:g} s",
            "restart the sound server (systemctl --user restart pipewire-pulse)",
        )
    found.device = device
    return ok(
        DEVICE,
        f"{device.name!r}: {device.samplerate} Hz, {device.channels} channel(s), "
        f"{device.block_frames}-frame blocks ({len(devices)} output device(s) in all)",
    )


def tone(rate: int) -> Frames:
    """TONE_MS of a quiet sine, with 5 ms ramps so it starts and ends without a click."""
    n = rate * TONE_MS // 1000
    wave = TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / rate)
    ramp = min(n // 2, rate // 200)
    envelope = np.ones(n)
    envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
    envelope[n - ramp :] = np.linspace(1.0, 0.0, ramp)
    return (wave * envelope).astype(np.float32)


async def test_tone(found: Findings) -> Check:
    from player.audio.output import AudioOutput
    from player.errors import OutputError

    device = found.device
    if device is None:
        return skipped(TONE, "needs the audio device")
    output = AudioOutput(found.settings.audio, device)
    frames = tone(device.samplerate)
    try:
        await in_thread(output.stream.open, DEVICE_TIMEOUT)
    except OutputError as err:
        return problem(TONE, str(err), _busy_fix(device.name))
    except TimeoutError:
        return problem(
            TONE,
            f"opening {device.name!r} did not finish within {DEVICE_TIMEOUT:g} s",
            START_SERVER,
        )
    try:
        output.begin_utterance()
        await output.write(frames, TONE_TIMEOUT)
        end = output.end_utterance()
        await asyncio.wait_for(output.wait_position(end, TONE_TIMEOUT), TONE_TIMEOUT)
    except (OutputError, TimeoutError) as err:
        return problem(
            TONE,
            f"the callback counted {output.frames_played} of {len(frames)} frames on "
            f"{device.name!r}: {err or 'it stopped asking for audio'}",
            _busy_fix(device.name),
        )
    finally:
        with contextlib.suppress(TimeoutError):  # a close that hangs leaves the verdict as is
            await in_thread(output.stream.close, DEVICE_TIMEOUT)
    played = output.frames_played
    if played < len(frames):
        return problem(
            TONE,
            f"the callback counted {played} of {len(frames)} frames",
            _busy_fix(device.name),
        )
    return ok(
        TONE,
        f"{TONE_MS} ms at {TONE_HZ:g} Hz played: {played} frames counted by the callback",
    )


def _busy_fix(name: str) -> str:
    return (
        f"check that {name!r} is not held by another program (a hw: device plays for one "
        "program at a time: stop the daemon first) and is not muted"
    )
