"""What a reloaded config changes in the running daemon (see `player.reload` for what
may change): chimes, text and stream settings at once, voice, phrase-cache keys and
credentials from the next call."""

from __future__ import annotations

import dataclasses
import logging

from player.auth import Credentials, open_credentials
from player.cache.caching import Caching
from player.config import Settings, SpeechKitSettings
from player.daemon.backend import Backend, engines
from player.errors import CredentialsError, DaemonError
from player.speech.requests import Speaker

_LOGGER = logging.getLogger(__name__)


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


class Reconfigure:
    """Takes a reloaded config on (see `player.reload`): chimes, text and stream settings
    at once, voice and credentials from the next call. Everything that can fail is done
    before anything changes."""

    def __init__(
        self,
        running: Settings,
        backend: Backend,
        speaker: Speaker,
        samplerate: int,
        caching: Caching | None = None,
    ) -> None:
        self._running = running
        self._started = running
        self._backend = backend
        self._caching = caching
        self._speaker = speaker
        self._samplerate = samplerate

    def __call__(self, new: Settings) -> None:
        from player.audio.chimes import load_chimes

        chimes = load_chimes(new.chimes, self._samplerate)
        renewed = self._new_credentials(new.speechkit)
        backend = self._backend
        self._speaker.playback.set_chimes(chimes)
        self._speaker.configure(new.stream, new.text)
        for client in backend.clients:
            cloud = client is backend.cloud
            client.configure(new.voice, new.speechkit if cloud else None)
        if self._caching is not None:
            self._caching.configure(new.voice, engines(self._started, new.voice))
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
