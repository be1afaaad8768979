"""Every error the package raises on purpose, under one base.

`str()` of each is one line meant for the person who asked (a config error with several
problems lists one per line). At the edges: the CLI catches `PlayerError` once and
prints it; the control server turns what an utterance failed with into a gRPC status
whose details are that line; the client library turns the daemon's statuses back into
`ClientError`. Anything else reaching an edge is a bug.

    PlayerError
    ├── ConfigError           the configuration is unusable        (config)
    ├── AudioError            the sound side                       (audio)
    │   ├── OutputError       the device cannot be opened or stopped taking audio
    │   └── ChimeError        a chime file cannot be played
    ├── SpeechError           what was asked cannot be spoken      (speech)
    │   ├── TextError         empty, too long, or fed after the end
    │   └── PriorityError     not one of speech-dispatcher's priorities
    ├── CredentialsError      no usable key or token for SpeechKit (auth)
    ├── SynthesisError        a synthesis call failed              (synthesis)
    ├── LocalError            our SpeechKit-compatible servers     (local)
    │   ├── LocalEngineError  Piper is missing or a voice will not load
    │   ├── Rejected          ends a call with a gRPC status
    │   └── ClientGone        the caller of a call went away
    ├── ControlError          the control socket cannot be served  (control)
    │   └── ClientError       what a client of the daemon is told
    ├── FleetError            an MQTT announcement cannot be taken (fleet)
    ├── DaemonError           the daemon cannot start
    └── InputError            standard input is not text           (cli)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

__all__ = [
    "AudioError",
    "ChimeError",
    "ClientError",
    "ClientGone",
    "ConfigError",
    "ControlError",
    "CredentialsError",
    "DaemonError",
    "FleetError",
    "InputError",
    "LocalEngineError",
    "LocalError",
    "OutputError",
    "PlayerError",
    "PriorityError",
    "Rejected",
    "SpeechError",
    "SynthesisError",
    "TextError",
]


class PlayerError(Exception):
    """The base of every error speechkit-player raises on purpose."""


class ConfigError(PlayerError):
    """The configuration is unusable; `errors` lists every problem found, one line each."""

    def __init__(self, source: Path | None, errors: list[str]) -> None:
        self.source = source
        self.errors = list(errors)
        where = f" in {source}" if source is not None else ""
        if len(self.errors) == 1:
            message = f"invalid configuration{where}: {self.errors[0]}"
        else:
            message = f"invalid configuration{where}:" + "".join(
                f"\n  - {error}" for error in self.errors
            )
        super().__init__(message)


class AudioError(PlayerError):
    """The sound side: the output device or a sound file."""


class OutputError(AudioError):
    """The audio device could not be opened or stopped consuming audio."""


class ChimeError(AudioError):
    """A chime file that cannot be played; the message names the file."""


class SpeechError(PlayerError):
    """What was asked cannot be spoken as asked."""


class TextError(SpeechError):
    """Text the daemon will not send: empty, too long, or fed after the end."""


class PriorityError(SpeechError):
    """A priority speech-dispatcher does not have."""


class CredentialsError(PlayerError):
    """No usable credential: a key the token service refuses or cannot be asked about,
    a token file that cannot be read. The message never holds a secret."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        """The token service could not be reached (rather than refusing)."""


class SynthesisError(PlayerError):
    """An utterance's synthesis failed; `code` is the gRPC status it failed with."""

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = None,
        request_id: str = "",
        *,
        retry_once: bool = False,
    ) -> None:
        super().__init__(message)
        if code is None:
            import grpc

            code = grpc.StatusCode.UNKNOWN
        self.code: grpc.StatusCode = code
        self.request_id = request_id
        self.retry_once = retry_once
        """The credentials were renewed since the call was refused: one new call may
        be accepted where this one was not."""


class LocalError(PlayerError):
    """Our SpeechKit-compatible servers."""


class LocalEngineError(LocalError):
    """Local synthesis cannot run: Piper is not installed or a voice will not load."""


class Rejected(LocalError):
    """Ends a call with a gRPC error status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class ClientGone(LocalError):
    """A write failed: the call is dead (the client cancelled or disconnected)."""


class ControlError(PlayerError):
    """The control socket cannot be served."""


class ClientError(ControlError):
    """What a client of the daemon is told: it is not there, or it refused the request."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class FleetError(PlayerError):
    """A message from the MQTT broker that cannot be taken; the message says why, in one
    line, without the payload."""


class DaemonError(PlayerError):
    """The daemon cannot start; the message says why."""


class InputError(PlayerError):
    """Standard input could not be read as text."""
