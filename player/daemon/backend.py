"""How the daemon speaks: the synthesis stack built from the settings (the cloud client,
the local synthesizer's process, the fallback between them, resuming, long texts, the
phrase cache), and what it must run and close for that."""

from __future__ import annotations

import dataclasses
import logging

import grpc

from player import __version__
from player.auth import CurrentCredentials, open_credentials
from player.cache.caching import Caching, Engines
from player.cache.store import PhraseStore
from player.config import Settings, SpeechKitSettings, VoiceSettings
from player.errors import CredentialsError, DaemonError, LocalEngineError
from player.local.engine import check_installed
from player.synthesis.fallback import Fallback
from player.synthesis.interface import Synthesis
from player.synthesis.local_process import LocalEngineClient, LocalEngineProcess
from player.synthesis.long_text import SplitLongText
from player.synthesis.resume import Resume
from player.synthesis.speechkit import SpeechKitClient

_LOGGER = logging.getLogger(__name__)

# grpc's default reconnect backoff starts at 1 s and grows to two minutes: after an outage
# an announcement would wait for the next attempt. Retry quickly instead (one connection
# attempt per 2 s at most is still gentle on the service).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.primary_user_agent", f"speechkit-player/{__version__}"),
]


def open_channel(speechkit: SpeechKitSettings) -> grpc.aio.Channel:
    if speechkit.tls:
        return grpc.aio.secure_channel(
            speechkit.endpoint, grpc.ssl_channel_credentials(), options=_CHANNEL_OPTIONS
        )
    return grpc.aio.insecure_channel(speechkit.endpoint, options=_CHANNEL_OPTIONS)


@dataclasses.dataclass
class Backend:
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


def open_backend(settings: Settings, samplerate: int) -> Backend:
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
        return Backend(local, "local", None, child, CurrentCredentials(None), local_client, None)
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
        return Backend(cloud, sk.endpoint, channel, None, current, clients, cloud)
    endpoint = f"{sk.endpoint} (fallback: local)"
    return Backend(Fallback(cloud, local), endpoint, channel, child, current, clients, cloud)


def engines(settings: Settings, voice: VoiceSettings | None = None) -> Engines:
    """Who speaks ``voice`` (the configured one by default), as the phrase cache tells
    them apart. From the settings the daemon started with: the endpoint, the fallback and
    the local voices only change with a restart."""
    sk, local = settings.speechkit, settings.local
    name = (voice or settings.voice).voice
    model = dict(local.voices).get(name, local.model)
    piper = f"piper:{model.name if model is not None else 'default'}"
    if sk.uses_local:
        return Engines(piper)
    return Engines(f"speechkit:{sk.endpoint}", piper if sk.fallback == "local" else None)


def speaking(
    settings: Settings, backend: Backend, samplerate: int
) -> tuple[Synthesis, Caching | None]:
    """The whole stack over the backend, and its phrase cache (None when off, or when
    its folder cannot be made: speech matters more, and the log says why)."""
    # Outermost, so each of a long text's calls may resume and fall back on its own; the
    # fallback inside, so a resumed call that cannot reach the cloud speaks locally.
    resuming = Resume(backend.synthesis, samplerate, settings.speechkit.retry_s)
    whole_texts = SplitLongText(resuming, samplerate)
    cache = settings.cache
    if not cache.enabled:
        return whole_texts, None
    store = PhraseStore(cache.dir, cache.max_mb * 1_000_000)
    try:
        store.open()
    except OSError as exc:
        _LOGGER.warning(
            "no phrase cache: cannot use %s (%s); set [cache] dir, or max_mb = 0",
            cache.dir,
            exc.strerror or type(exc).__name__,
        )
        return whole_texts, None
    caching = Caching(whole_texts, store, settings.voice, engines(settings), samplerate)
    return caching, caching
