"""Settings: frozen dataclasses loaded from a TOML file plus a few environment variables.

`load_settings` reads the whole file, collects every problem it finds and raises one
`ConfigError` that lists them all. Credentials are wrapped in `Secret`, and no message,
repr or str built here ever contains a credential's value.
"""

from __future__ import annotations

import hmac
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from player.config_reader import MISSING, Range, TableReader, describe, suggest

Loudness = Literal["LUFS", "MAX_PEAK"]

_SECTIONS = ("speechkit", "voice", "audio", "control")
_SECTION_LIST = ", ".join(f"[{name}]" for name in _SECTIONS)
_CREDENTIAL_KEYS = ("api_key", "iam_token", "api_key_file", "iam_token_file")
_NO_CREDENTIALS = (
    "no credentials: set api_key or iam_token (or *_file) in [speechkit], "
    "or YANDEX_API_KEY / YANDEX_IAM_TOKEN in the environment"
)


class Secret:
    """A credential whose value shows only through `reveal()`, never in repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


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
    endpoint: str = "tts.api.cloud.yandex.net:443"
    """gRPC endpoint as "host:port"."""
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


@dataclass(frozen=True)
class ControlSettings:
    socket: Path
    """Unix socket path the control server listens on."""


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
    source: Path | None
    """The config file these settings came from; None when built from defaults."""


def load_settings(
    path: Path | None, environ: Mapping[str, str], *, need_credentials: bool = False
) -> Settings:
    """Read `path` (None for all defaults), apply the environment and validate everything."""
    data = _read_toml(path) if path is not None else {}
    base = path.absolute().parent if path is not None else None
    errors: list[str] = []
    sections = {name: TableReader(name, _table(data, name, errors), errors) for name in _SECTIONS}
    speechkit = _speechkit(sections["speechkit"], base, environ, need_credentials)
    voice = _voice(sections["voice"])
    audio = _audio(sections["audio"])
    control = _control(sections["control"], base, environ)
    for section in sections.values():
        section.report_unknown()
    _report_unknown_top_level(data, sections, errors)
    if errors:
        raise ConfigError(path, errors)
    return Settings(speechkit, voice, audio, control, path)


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
    section: TableReader, base: Path | None, environ: Mapping[str, str], need_credentials: bool
) -> SpeechKitSettings:
    default = SpeechKitSettings()
    endpoint = section.string("endpoint", default.endpoint, nonempty=True)
    if not _is_host_port(endpoint):
        section.error("endpoint", f'expected "host:port", found "{endpoint}"')
    folder_id = section.string("folder_id", "") or _env(environ, "YANDEX_FOLDER_ID")
    api_key, iam_token = _credentials(section, base, environ, need_credentials)
    return SpeechKitSettings(
        endpoint=endpoint,
        tls=section.boolean("tls", default.tls),
        api_key=api_key,
        iam_token=iam_token,
        folder_id=folder_id,
        connect_timeout=section.number(
            "connect_timeout", default.connect_timeout, Range(0, math.inf, lo_open=True)
        ),
    )


def _is_host_port(endpoint: str) -> bool:
    host, colon, port = endpoint.rpartition(":")
    return bool(host.strip()) and colon == ":" and port.isdigit() and 0 < int(port) < 65536


def _credentials(
    section: TableReader, base: Path | None, environ: Mapping[str, str], required: bool
) -> tuple[Secret | None, Secret | None]:
    """Return (api_key, iam_token): at most one is set; the environment wins over the file."""
    errors_before = len(section.errors)
    given = {key: section.string(key, None, nonempty=True) for key in _CREDENTIAL_KEYS}
    named = [key for key, value in given.items() if value is not None]
    if len(named) > 1:
        section.errors.append(
            f"[speechkit] sets {', '.join(named)}: set only one of {', '.join(_CREDENTIAL_KEYS)}"
        )
    env_key, env_token = _env(environ, "YANDEX_API_KEY"), _env(environ, "YANDEX_IAM_TOKEN")
    if env_key and env_token:
        section.errors.append(
            "both YANDEX_API_KEY and YANDEX_IAM_TOKEN are set in the environment; set only one"
        )
        return None, None
    if env_key or env_token:
        return (Secret(env_key), None) if env_key else (None, Secret(env_token))
    if len(named) != 1:
        if required and len(section.errors) == errors_before:
            section.errors.append(_NO_CREDENTIALS)
        return None, None
    key = named[0]
    value = given[key]
    if value is not None and key.endswith("_file"):
        value = _read_secret_file(section, key, _resolve(value, base, environ))
    if value is None:
        return None, None
    secret = Secret(value.strip())
    return (secret, None) if key.startswith("api_key") else (None, secret)


def _read_secret_file(section: TableReader, key: str, path: Path) -> str | None:
    """Return the file's stripped contents; problems name the path, never the contents."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        section.error(key, f"cannot read {path}: {exc.strerror or type(exc).__name__}")
        return None
    except UnicodeDecodeError:
        section.error(key, f"{path} is not UTF-8 text")
        return None
    if not text:
        section.error(key, f"{path} is empty")
        return None
    return text


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
