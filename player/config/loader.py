"""Reading the config: TOML plus a few environment variables, validated all at once.

`load_settings` reads the whole file, collects every problem it finds and raises one
`ConfigError` that lists them all, suggesting the right key for a misspelled one.
Credentials are wrapped in `Secret`; no message built here contains their values.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from player import limits
from player.config.credentials import read_credentials
from player.config.fleet import read_cache, read_mqtt
from player.config.reader import MISSING, Range, TableReader, describe, is_host_port, suggest
from player.config.settings import (
    LOCAL,
    AudioSettings,
    ChimeSettings,
    ControlSettings,
    Fallback,
    LocalSettings,
    Loudness,
    Markup,
    MetricsSettings,
    Settings,
    SpeechKitSettings,
    SsipSettings,
    StreamSettings,
    TextSettings,
    VoiceSettings,
)
from player.errors import ConfigError

_SECTIONS = (
    "speechkit",
    "voice",
    "audio",
    "control",
    "local",
    "stream",
    "text",
    "chimes",
    "metrics",
    "cache",
    "mqtt",
    "ssip",
)
_SECTION_LIST = ", ".join(f"[{name}]" for name in _SECTIONS)
_FALLBACKS: dict[str, Fallback] = {"none": "none", "local": "local"}
_MARKUPS: dict[str, Markup] = {"plain": "plain", "tts": "tts"}
# Seconds: shorter gives up on a healthy service on a slow network; longer lets a dead one
# hold every utterance queued behind it.
_ANSWER_TIMEOUTS = Range(0.5, 600)


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
    text = _text(sections["text"])
    chimes = _chimes(sections["chimes"], base, environ)
    metrics = _metrics(sections["metrics"])
    resolve = lambda raw: _resolve(raw, base, environ)  # noqa: E731
    cache = read_cache(sections["cache"], resolve, environ)
    mqtt = read_mqtt(sections["mqtt"], resolve)
    ssip = _ssip(sections["ssip"], resolve, environ)
    for section in sections.values():
        section.report_unknown()
    _report_unknown_top_level(data, sections, errors)
    if errors:
        raise ConfigError(path, errors)
    return Settings(
        speechkit,
        voice,
        audio,
        control,
        local,
        stream,
        chimes,
        path,
        text,
        metrics=metrics,
        cache=cache,
        mqtt=mqtt,
        ssip=ssip,
    )


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
    if endpoint != LOCAL and not is_host_port(endpoint):
        section.error("endpoint", f'expected "host:port" or "local", found "{endpoint}"')
    folder_id = section.string("folder_id", "") or _env(environ, "YANDEX_FOLDER_ID")
    given = read_credentials(section, environ, lambda raw: _resolve(raw, base, environ))
    fallback = section.string("fallback", default.fallback)
    if fallback not in _FALLBACKS:
        section.error("fallback", f'expected "none" or "local", found "{fallback}"')
    return SpeechKitSettings(
        endpoint=endpoint,
        tls=section.boolean("tls", default.tls),
        api_key=given.api_key,
        iam_token=given.iam_token,
        iam_token_file=given.iam_token_file,
        service_account_key=given.service_account_key,
        credentials=given.source,
        iam_endpoint=_url(section, "iam_endpoint", default.iam_endpoint),
        metadata_url=_url(section, "metadata_url", default.metadata_url),
        folder_id=folder_id,
        data_logging=section.boolean("data_logging", default.data_logging),
        connect_timeout=section.number(
            "connect_timeout", default.connect_timeout, Range(0, math.inf, lo_open=True)
        ),
        first_audio_timeout_s=section.number(
            "first_audio_timeout_s", default.first_audio_timeout_s, _ANSWER_TIMEOUTS
        ),
        stall_timeout_s=section.number(
            "stall_timeout_s", default.stall_timeout_s, _ANSWER_TIMEOUTS
        ),
        retry_s=section.number("retry_s", default.retry_s, Range(0, 600)),
        fallback=_FALLBACKS.get(fallback, default.fallback),
    )


def _url(section: TableReader, key: str, default: str) -> str:
    url = section.string(key, default, nonempty=True)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        section.error(key, f'expected an http:// or https:// URL, found "{url}"')
        return default
    return url


def _voice(section: TableReader) -> VoiceSettings:
    default = VoiceSettings()
    loudness = _loudness(section, default.loudness)
    volume_range = None if "loudness" in section.failed else _VOLUME_RANGES[loudness]
    return VoiceSettings(
        voice=section.string("voice", default.voice, nonempty=True),
        role=section.string("role", default.role),
        speed=section.number("speed", default.speed, Range(*limits.SPEED)),
        volume=section.number(
            "volume", default.volume, volume_range, f' for loudness "{loudness}"'
        ),
        pitch_shift=section.number(
            "pitch_shift", default.pitch_shift, Range(*limits.PITCH_SHIFT_HZ)
        ),
        loudness=loudness,
    )


_LOUDNESS: dict[str, Loudness] = {"LUFS": "LUFS", "MAX_PEAK": "MAX_PEAK"}
_VOLUME_RANGES: dict[Loudness, Range] = {
    "MAX_PEAK": Range(*limits.VOLUME_MAX_PEAK, lo_open=True),
    "LUFS": Range(*limits.VOLUME_LUFS, hi_open=True),
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
            "samplerate", default.samplerate, Range(*limits.RATE_HZ, or_zero=True)
        ),
        channels=section.integer("channels", default.channels, Range(0, 8)),
        block_ms=section.number("block_ms", default.block_ms, Range(1, 100)),
        buffer_ms=buffer_ms,
        prebuffer_ms=section.integer(
            "prebuffer_ms", default.prebuffer_ms, prebuffer_range, " (at most half of buffer_ms)"
        ),
        jitter_prebuffer_ms=section.integer(
            "jitter_prebuffer_ms",
            default.jitter_prebuffer_ms,
            prebuffer_range,
            " (at most half of buffer_ms)",
        ),
        fade_ms=section.number("fade_ms", default.fade_ms, Range(0, 100)),
        idle_stop_ms=section.integer("idle_stop_ms", default.idle_stop_ms, Range(0, 3_600_000)),
        device_wait_s=section.number("device_wait_s", default.device_wait_s, Range(0, 3600)),
        media_role=_media_role(section, default.media_role),
    )


_ROLE = re.compile(r"[A-Za-z0-9._-]{0,64}")


def _media_role(section: TableReader, default: str) -> str:
    role = section.string("media_role", default)
    if _ROLE.fullmatch(role):
        return role
    section.error(
        "media_role",
        f"expected a role name of letters, digits, '.', '_' or '-' (at most 64), found {role!r}",
    )
    return default


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
    if not ((listen.startswith("unix:") and listen[5:].strip()) or is_host_port(listen)):
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


def _text(section: TableReader) -> TextSettings:
    default = TextSettings()
    raw = section.string("markup", default.markup)
    markup = _MARKUPS.get(raw.lower())
    if markup is None:
        section.error("markup", f'expected "plain" or "tts", found "{raw}"')
        return default
    return TextSettings(markup=markup)


def _metrics(section: TableReader) -> MetricsSettings:
    listen = section.string("listen", "").strip()
    if listen and not is_host_port(listen):
        section.error("listen", f'expected "host:port", or "" for no metrics, found "{listen}"')
    return MetricsSettings(listen=listen)


def _ssip(
    section: TableReader, resolve: Callable[[str], Path], environ: Mapping[str, str]
) -> SsipSettings:
    raw = section.string("socket", "auto", nonempty=True).strip()
    listen = section.string("listen", "").strip()
    if listen and not is_host_port(listen):
        section.error(
            "listen", f'expected "host:port", or "" for no SSIP over TCP, found "{listen}"'
        )
    icons = _sound_icons(section, resolve)
    if raw == "off":
        return SsipSettings(listen=listen, sound_icons=icons)
    if raw == "auto":
        return SsipSettings(speechd_socket(environ), True, listen, icons)
    return SsipSettings(resolve(raw), False, listen, icons)


def _sound_icons(
    section: TableReader, resolve: Callable[[str], Path]
) -> tuple[tuple[str, Path], ...]:
    icons: list[tuple[str, Path]] = []
    table = section.get("sound_icons")
    if table is MISSING:
        return ()
    if not isinstance(table, dict):
        section.error(
            "sound_icons", f"expected a table [ssip.sound_icons], found {describe(table)}"
        )
        return ()
    for name, raw in table.items():
        if not isinstance(raw, str) or not raw.strip():
            section.error(
                f"sound_icons.{name}", f"expected a WAV file's path, found {describe(raw)}"
            )
        elif not (path := resolve(raw)).is_file():
            section.error(f"sound_icons.{name}", f"no WAV file at {path}")
        else:
            icons.append((name.lower(), path))
    return tuple(icons)


def speechd_socket(environ: Mapping[str, str]) -> Path:
    """Where speech-dispatcher's clients look for it when SPEECHD_ADDRESS is not set:
    libspeechd's and Python speechd's default, under the user's runtime directory (or,
    without one, the cache directory, as GLib's g_get_user_runtime_dir falls back)."""
    runtime_dir = _env(environ, "XDG_RUNTIME_DIR")
    if not runtime_dir:
        cache = _env(environ, "XDG_CACHE_HOME")
        runtime_dir = cache or str(Path(environ.get("HOME") or os.path.expanduser("~")) / ".cache")
    return Path(runtime_dir) / "speech-dispatcher" / "speechd.sock"


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
