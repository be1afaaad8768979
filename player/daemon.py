"""The daemon: settings -> output stream, gRPC channel, playback, control socket; and
what systemd is told (readiness, a status line, the watchdog)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import signal
import time
from typing import TYPE_CHECKING

import grpc

from player import __version__
from player.audio.devices import current_output_devices, resolve_device
from player.audio.media_role import announce_role
from player.audio.output import AudioOutput
from player.auth import Credentials, CurrentCredentials, open_credentials
from player.config import Settings, SpeechKitSettings
from player.control.server import PlayerService
from player.control.unix_socket import ControlServer, claim_socket
from player.errors import CredentialsError, DaemonError, LocalEngineError
from player.generated.speechkit_player.control.v1 import control_pb2
from player.local.engine import check_installed
from player.reload import Reloader
from player.speech.playback import Playback
from player.synthesis.fallback import Fallback
from player.synthesis.interface import Synthesis
from player.synthesis.local_process import LocalEngineClient, LocalEngineProcess
from player.synthesis.long_text import SplitLongText
from player.synthesis.resume import Resume
from player.synthesis.speechkit import SpeechKitClient
from player.systemd import Notifier

if TYPE_CHECKING:
    from player.metrics.server import Metrics

_LOGGER = logging.getLogger(__name__)

# Underruns are logged as a summary at most this often (seconds).
REPORT_INTERVAL = 10.0
# grpc's default reconnect backoff starts at 1 s and grows to two minutes: after an outage
# an announcement would wait for the next attempt. Retry quickly instead (one connection
# attempt per 2 s at most is still gentle on the service).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.primary_user_agent", f"speechkit-player/{__version__}"),
]
WEDGED_S = 5.0
"""Seconds the audio side may stay unanswering (see OutputStream.stuck_s) before the
systemd watchdog is no longer fed. Longer than the watcher's SILENT_LIMIT and a
reopening's PortAudio re-initialisation, so a device that merely went away never
restarts the daemon."""
FALLBACK_SHOWN_S = 60.0
"""Seconds after an utterance fell back to the local synthesizer that the status line
still says so."""


def open_channel(speechkit: SpeechKitSettings) -> grpc.aio.Channel:
    if speechkit.tls:
        return grpc.aio.secure_channel(
            speechkit.endpoint, grpc.ssl_channel_credentials(), options=_CHANNEL_OPTIONS
        )
    return grpc.aio.insecure_channel(speechkit.endpoint, options=_CHANNEL_OPTIONS)


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
        return self._playback.output.stream.stuck_s() < WEDGED_S


@dataclasses.dataclass
class _Backend:
    """How the daemon synthesises, and what it must run and close for that."""

    synthesis: Synthesis
    endpoint: str
    """For status and the log."""
    channel: grpc.aio.Channel | None
    """The channel to the configured endpoint; None when it is the local synthesizer."""
    child: LocalEngineProcess | None
    """The local synthesizer, which runs alongside playback."""
    credentials: CurrentCredentials
    """What cloud calls authenticate with; renewed alongside playback."""
    clients: tuple[SpeechKitClient, ...]
    """Every client whose calls a reloaded voice applies to; the cloud's first."""
    cloud: SpeechKitClient | None
    """The client of the configured endpoint; None when it is the local synthesizer."""


def _synthesis(settings: Settings, samplerate: int) -> _Backend:
    sk, voice = settings.speechkit, settings.voice
    local: LocalEngineClient | None = None
    child: LocalEngineProcess | None = None
    local_client: tuple[SpeechKitClient, ...] = ()
    if sk.uses_local or sk.fallback == "local":
        try:
            check_installed(settings.local)
        except LocalEngineError as err:
            raise DaemonError(str(err)) from None
        child = LocalEngineProcess(settings.source, _LOGGER.isEnabledFor(logging.DEBUG))
        local_settings = SpeechKitSettings(endpoint=child.address, tls=False)
        local_client = (SpeechKitClient(child.channel, local_settings, voice, samplerate),)
        local = LocalEngineClient(child, local_client[0])
    if sk.uses_local:
        assert local is not None
        why = 'endpoint = "local"' if sk.endpoint == "local" else "no SpeechKit key or token"
        _LOGGER.info("%s: speaking through the local Piper synthesizer", why)
        return _Backend(local, "local", None, child, CurrentCredentials(None), local_client, None)
    try:
        credentials = open_credentials(sk)
    except CredentialsError as err:
        raise DaemonError(str(err)) from None
    channel = open_channel(sk)
    cloud = SpeechKitClient(
        channel, sk, voice, samplerate, credentials=credentials, fail_fast=local is not None
    )
    _LOGGER.info(
        "speaking with voice %s via %s (%s)%s",
        voice.voice,
        sk.endpoint,
        "TLS" if sk.tls else "plaintext",
        "; the local Piper synthesizer takes over when it is unreachable" if local else "",
    )
    current = CurrentCredentials(credentials)
    clients = (cloud, *local_client)
    if local is None:
        return _Backend(cloud, sk.endpoint, channel, None, current, clients, cloud)
    endpoint = f"{sk.endpoint} (fallback: local)"
    return _Backend(Fallback(cloud, local), endpoint, channel, child, current, clients, cloud)


# [speechkit] keys a reload hands to the cloud client as they are; the rest (but those
# that need a restart) name the credentials.
_LIVE_SPEECHKIT = (
    "folder_id",
    "data_logging",
    "connect_timeout",
    "first_audio_timeout_s",
    "stall_timeout_s",
)


def _credentials_of(speechkit: SpeechKitSettings) -> SpeechKitSettings:
    """The settings with only what names the credentials left to tell them apart."""
    return dataclasses.replace(
        speechkit, **{name: getattr(SpeechKitSettings(), name) for name in _LIVE_SPEECHKIT}
    )


class _Reconfigure:
    """Takes a reloaded config on (see `player.reload`): chimes, text and stream settings
    at once, voice and credentials from the next call. Everything that can fail is done
    before anything changes."""

    def __init__(
        self,
        running: Settings,
        backend: _Backend,
        playback: Playback,
        service: PlayerService,
        samplerate: int,
    ) -> None:
        self._running = running
        self._backend = backend
        self._playback = playback
        self._service = service
        self._samplerate = samplerate

    def __call__(self, new: Settings) -> None:
        from player.audio.chimes import load_chimes

        chimes = load_chimes(new.chimes, self._samplerate)
        renewed = self._new_credentials(new.speechkit)
        backend = self._backend
        self._playback.set_chimes(chimes)
        self._service.configure(new.stream, new.text)
        for client in backend.clients:
            cloud = client is backend.cloud
            client.configure(new.voice, new.speechkit if cloud else None)
        if renewed is not None and backend.cloud is not None:
            backend.cloud.credentials = renewed
            backend.credentials.replace(renewed)
        self._running = new

    def _new_credentials(self, speechkit: SpeechKitSettings) -> Credentials | None:
        """New credentials when the config names others; None to keep those in use."""
        if _credentials_of(speechkit) == _credentials_of(self._running.speechkit):
            return None
        if self._backend.cloud is None:
            _LOGGER.warning(
                "new credentials take effect after a restart: the daemon speaks through "
                "the local synthesizer"
            )
            return None
        try:
            credentials = open_credentials(speechkit)
        except CredentialsError as err:
            raise DaemonError(str(err)) from None
        if credentials is None:
            raise DaemonError(
                "[speechkit] names no credential any more; the running ones are kept "
                "until a restart"
            )
        return credentials


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT. Raises DaemonError, or ControlError for the control
    socket, when it cannot start."""
    from player.audio.chimes import load_chimes
    from player.errors import ChimeError, OutputError

    # Before any child starts, so none inherits systemd's variables.
    notifier = Notifier.from_environment()
    # First, so that a second daemon started on a live socket opens no device and starts
    # no child before it is refused, and one that cannot serve at all says so at once.
    claim_socket(settings.control.socket)
    # Before PortAudio first runs: the sound server reads it when a stream connects.
    announce_role(settings.audio.media_role)
    try:
        device = resolve_device(settings.audio)
        chimes = load_chimes(settings.chimes, device.samplerate)
        output = AudioOutput(settings.audio, device)
        output.stream.open()
    except (OutputError, ChimeError) as err:
        raise DaemonError(str(err)) from None
    try:
        synthesis = _synthesis(settings, device.samplerate)
    except DaemonError:
        output.stream.close()
        raise
    # Outermost, so each of a long text's calls may resume and fall back on its own; the
    # fallback inside, so a resumed call that cannot reach the cloud speaks locally.
    resuming = Resume(synthesis.synthesis, device.samplerate, settings.speechkit.retry_s)
    whole_texts = SplitLongText(resuming, device.samplerate)
    playback = Playback(output, whole_texts, chimes=chimes)
    service = PlayerService(
        playback, output, synthesis.endpoint, _devices, settings.stream, settings.text
    )
    control = ControlServer(settings.control.socket, service)
    status = _ServiceStatus(playback)
    metrics: Metrics | None = None
    if settings.metrics.listen:
        # Only then: prometheus_client costs a daemon without metrics 4 MB.
        from player.metrics.server import Metrics

        metrics = Metrics(playback, synthesis.channel, synthesis.credentials.expires_at)
    reloader = Reloader(
        settings, _Reconfigure(settings, synthesis, playback, service, device.samplerate)
    )
    try:
        if metrics is not None:
            # Before readiness: a daemon that cannot serve what it was asked to refuses.
            metrics.serve(settings.metrics.listen)
        await control.start()
        # The socket answers and the device is open: what a client of the unit waits for.
        notifier.ready(status.line())
        await _serve(playback, synthesis, notifier, status, reloader, metrics=metrics)
    finally:
        notifier.stopping()
        notifier.close()
        if metrics is not None:
            await metrics.aclose()
        await control.stop()
        await output.stream.aclose()
        if synthesis.channel is not None:
            await synthesis.channel.close()
        if synthesis.child is not None:
            await synthesis.child.aclose()
        _LOGGER.info("stopped")


async def _serve(
    playback: Playback,
    backend: _Backend,
    notifier: Notifier,
    status: _ServiceStatus,
    reloader: Reloader,
    *,
    metrics: Metrics | None = None,
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
