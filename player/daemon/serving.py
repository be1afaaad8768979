"""The daemon: settings -> output stream, gRPC channel, playback, control socket; and
what systemd is told (readiness, a status line, the watchdog)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from typing import TYPE_CHECKING

from player.audio.devices import current_output_devices, resolve_device
from player.audio.media_role import announce_role
from player.audio.output import AudioOutput
from player.audio.ring import Frames
from player.config import Settings
from player.control.server import PlayerService
from player.control.unix_socket import ControlServer, claim_socket
from player.daemon.backend import Backend, open_backend, speaking
from player.daemon.reconfigure import Reconfigure
from player.errors import ChimeError, DaemonError
from player.generated.speechkit_player.control.v1 import control_pb2
from player.reload import Reloader
from player.speech.playback import Playback
from player.speech.requests import Speaker
from player.systemd import Notifier

if TYPE_CHECKING:
    from player.fleet.fleet import Fleet
    from player.metrics.server import Metrics
    from player.ssip import SsipServer

_LOGGER = logging.getLogger(__name__)

# Underruns are logged as a summary at most this often (seconds).
REPORT_INTERVAL = 10.0
WEDGED_S = 10.0
"""Seconds the audio side may stay unanswering (see OutputStream.stuck_s) before the
systemd watchdog is no longer fed. Longer than a stream's start-up bound
(`recovery.Limits.start_s`, with the retries of a start that timed out) and a reopening's
PortAudio re-initialisation, so a device that is slow or merely went away never restarts
the daemon."""
FALLBACK_SHOWN_S = 60.0
"""Seconds after an utterance fell back to the local synthesizer that the status line
still says so."""


def _devices() -> list[control_pb2.Device]:
    """The list as it is now, not as our PortAudio found it at start-up."""
    return [control_pb2.Device(**device) for device in current_output_devices()]


async def _report(output: AudioOutput) -> None:
    """Summarise underruns instead of logging each one from the callback."""
    seen, seen_device = output.underruns, output.stream.device_underruns
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
        if output.stream.device_underruns != seen_device:
            _LOGGER.warning(
                "the sound device ran dry %d time(s) in the last %.0f s (the system was "
                "too busy to run the audio callback in time)",
                output.stream.device_underruns - seen_device,
                REPORT_INTERVAL,
            )
            seen_device = output.stream.device_underruns
        if output.stream.callback_failed and not failed:
            _LOGGER.error("the audio callback failed; the stream is reopened on the next utterance")
        failed = output.stream.callback_failed


class _ServiceStatus:
    """What systemd is told: a line for `systemctl status`, and whether the audio side
    still answers. Only the event loop calls it."""

    def __init__(self, playback: Playback) -> None:
        self._playback = playback
        self._fallbacks = playback.counters.fallbacks
        self._fell_back_at = -math.inf

    def line(self) -> str:
        playback, now = self._playback, time.monotonic()
        device = playback.output.stream.device_state
        # The counter moves when a call that fell back ends; its audio still plays then.
        if (fallbacks := playback.counters.fallbacks) != self._fallbacks:
            self._fallbacks, self._fell_back_at = fallbacks, now
        if device.lost:
            return f"device lost: {device.reason}"
        speaking = playback.current_id
        if speaking is None:
            return "idle"
        if now - self._fell_back_at < FALLBACK_SHOWN_S:
            return f"cloud unreachable, speaking locally ({speaking})"
        return f"speaking {speaking}"

    def alive(self) -> bool:
        stream = self._playback.output.stream
        # A device that failed to start too often is usable again only after a restart,
        # which systemd does once the pings stop.
        return stream.stuck_s() < WEDGED_S and not stream.cannot_open


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT. Raises DaemonError, or ControlError for the control
    socket, when it cannot start."""
    # Before any child starts, so none inherits systemd's variables.
    notifier = Notifier.from_environment()
    # First, so that a second daemon started on a live socket opens no device and starts
    # no child before it is refused, and one that cannot serve at all says so at once.
    claim_socket(settings.control.socket)
    output, chimes = _open_output(settings)
    try:
        backend = open_backend(settings, output.device.samplerate)
    except DaemonError:
        output.stream.close()
        raise
    synthesis, caching = speaking(settings, backend, output.device.samplerate)
    playback = Playback(output, synthesis, chimes=chimes, recall=caching)
    speaker = Speaker(playback, settings.stream, settings.text)
    service = PlayerService(speaker, output, backend.endpoint, _devices, caching)
    control = ControlServer(settings.control.socket, service)
    status = _ServiceStatus(playback)
    metrics, fleet = _extras(settings, playback, backend, speaker, service)
    reconfigure = Reconfigure(settings, backend, speaker, output.device.samplerate, caching)
    ssip: SsipServer | None = None
    try:
        ssip = _ssip(settings, speaker)
        if metrics is not None:
            # Before readiness: a daemon that cannot serve what it was asked to refuses.
            metrics.serve(settings.metrics.listen)
        await control.start()
        if ssip is not None:
            await ssip.start()
        # The socket answers and the device is open: what a client of the unit waits for.
        notifier.ready(status.line())
        reloader = Reloader(settings, reconfigure)
        await _serve(
            playback, backend, notifier, status, reloader, metrics=metrics, fleet=fleet, ssip=ssip
        )
    finally:
        notifier.stopping()
        notifier.close()
        if ssip is not None:
            await ssip.aclose()
        if metrics is not None:
            await metrics.aclose()
        await control.stop()
        await output.stream.aclose()
        if caching is not None:
            await caching.aclose()
        if backend.channel is not None:
            await backend.channel.close()
        if backend.child is not None:
            await backend.child.aclose()
        _LOGGER.info("stopped")


def _open_output(settings: Settings) -> tuple[AudioOutput, dict[str, Frames]]:
    from player.audio.chimes import load_chimes
    from player.errors import ChimeError, OutputError

    # Before PortAudio first runs: the sound server reads it when a stream connects.
    announce_role(settings.audio.media_role)
    try:
        device = resolve_device(settings.audio)
        chimes = load_chimes(settings.chimes, device.samplerate)
        output = AudioOutput(settings.audio, device)
        output.stream.open()
    except (OutputError, ChimeError) as err:
        raise DaemonError(str(err)) from None
    return output, chimes


def _extras(
    settings: Settings,
    playback: Playback,
    backend: Backend,
    speaker: Speaker,
    service: PlayerService,
) -> tuple[Metrics | None, Fleet | None]:
    """The metrics endpoint and the MQTT fleet link, when configured."""
    metrics: Metrics | None = None
    if settings.metrics.listen:
        # Only then: prometheus_client costs a daemon without metrics 4 MB.
        from player.metrics.server import Metrics

        metrics = Metrics(playback, backend.channel, backend.credentials.expires_at)
    fleet: Fleet | None = None
    if settings.mqtt.enabled:
        # Only then: the MQTT client stays out of a daemon that has no broker.
        from player.fleet.fleet import Fleet

        fleet = Fleet(settings.mqtt, speaker, service)
    return metrics, fleet


def _ssip(settings: Settings, speaker: Speaker) -> SsipServer | None:
    """The SSIP front, when it has a socket to serve."""
    if settings.ssip.socket is None and not settings.ssip.listen:
        return None
    from player.audio.chimes import load_wav
    from player.ssip import SsipServer

    # [local] voices are offered only where the local voice speaks: the cloud knows none.
    local = [name for name, _ in settings.local.voices] if settings.speechkit.uses_local else []
    rate = speaker.playback.output.device.samplerate
    try:
        icons = {name: load_wav(path, rate) for name, path in settings.ssip.sound_icons}
    except ChimeError as err:
        raise DaemonError(f"[ssip] sound_icons: {err}") from None
    return SsipServer(settings.ssip, speaker, settings.voice.voice, local, icons)


async def _serve(
    playback: Playback,
    backend: Backend,
    notifier: Notifier,
    status: _ServiceStatus,
    reloader: Reloader,
    *,
    metrics: Metrics | None = None,
    fleet: Fleet | None = None,
    ssip: SsipServer | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    # Without a handler SIGHUP would end the daemon and leave its socket behind.
    loop.add_signal_handler(signal.SIGHUP, reloader.reload)
    try:
        async with asyncio.TaskGroup() as group:
            output = playback.output
            tasks = [
                group.create_task(playback.run()),
                group.create_task(_report(output)),
                group.create_task(output.stream.stop_when_idle(lambda: playback.busy)),
                group.create_task(output.stream.watch()),
                group.create_task(notifier.keep_alive(status.line, status.alive)),
                group.create_task(backend.credentials.run()),
            ]
            if backend.child is not None:
                tasks.append(group.create_task(backend.child.run()))
            if metrics is not None:
                tasks.append(group.create_task(metrics.run()))
            if fleet is not None:
                tasks.append(group.create_task(fleet.run()))
            if ssip is not None:
                tasks.append(group.create_task(ssip.run()))
            await stopping.wait()
            _LOGGER.info("shutting down")
            notifier.stopping()
            await playback.stop()  # fades out whatever is playing
            for task in tasks:
                task.cancel()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
