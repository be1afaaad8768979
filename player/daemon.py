"""The daemon: settings -> output stream, gRPC channel, playback, control socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc

from player.config import Settings, SpeechKitSettings
from player.control import ControlServer, PlayerService
from player.generated.speechkit_player.control.v1 import control_pb2
from player.output import AudioOutput, output_devices, resolve_device
from player.playback import Playback
from player.session import Synthesizer

_LOGGER = logging.getLogger(__name__)

# Underruns are logged as a summary at most this often (seconds).
REPORT_INTERVAL = 10.0
# grpc's default reconnect backoff starts at 1 s and grows to two minutes: after an outage
# an announcement would wait for the next attempt. Retry quickly instead (one connection
# attempt per 2 s at most is still gentle on the service).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class DaemonError(Exception):
    """The daemon cannot start; the message says why."""


def open_channel(speechkit: SpeechKitSettings) -> grpc.aio.Channel:
    if speechkit.tls:
        return grpc.aio.secure_channel(
            speechkit.endpoint, grpc.ssl_channel_credentials(), options=_CHANNEL_OPTIONS
        )
    return grpc.aio.insecure_channel(speechkit.endpoint, options=_CHANNEL_OPTIONS)


def _devices() -> list[control_pb2.Device]:
    return [control_pb2.Device(**device) for device in output_devices()]


async def _report(output: AudioOutput) -> None:
    """Summarise underruns instead of logging each one from the callback."""
    seen = output.underruns
    failed = False
    while True:
        await asyncio.sleep(REPORT_INTERVAL)
        if output.underruns != seen:
            _LOGGER.warning(
                "%d underrun(s) in the last %.0f s: audio arrived slower than real time",
                output.underruns - seen,
                REPORT_INTERVAL,
            )
            seen = output.underruns
        if output.callback_failed and not failed:
            _LOGGER.error("the audio callback failed; the stream is reopened on the next utterance")
        failed = output.callback_failed


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT. Raises DaemonError when it cannot start."""
    from player.output import OutputError

    try:
        device = resolve_device(settings.audio)
        output = AudioOutput(settings.audio, device)
        output.open()
    except OutputError as err:
        raise DaemonError(str(err)) from None
    channel = open_channel(settings.speechkit)
    synthesizer = Synthesizer(
        channel,
        settings.speechkit,
        settings.voice,
        device.samplerate,
    )
    playback = Playback(output, synthesizer)
    service = PlayerService(playback, output, settings.speechkit.endpoint, _devices)
    control = ControlServer(settings.control.socket, service)
    try:
        await control.start()
        _LOGGER.info(
            "speaking with voice %s via %s (%s)",
            settings.voice.voice,
            settings.speechkit.endpoint,
            "TLS" if settings.speechkit.tls else "plaintext",
        )
        await _serve(playback)
    finally:
        await control.stop()
        output.close()
        await channel.close()
        _LOGGER.info("stopped")


async def _serve(playback: Playback) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(playback.run()), group.create_task(_report(playback.output))]
            await stopping.wait()
            _LOGGER.info("shutting down")
            await playback.stop()  # fades out whatever is playing
            for task in tasks:
                task.cancel()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
