"""Reading [cache] and [mqtt]: what a kiosk in a fleet keeps on disk and where its
announcements come from."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from player.config.credentials import Secret, read_secret_file
from player.config.reader import MISSING, Range, TableReader, describe, is_host_port
from player.config.settings import CacheSettings, MqttSettings

Resolve = Callable[[str], Path]

# A topic level the daemon builds topics from: no wildcards, no separators, no NUL.
_LEVEL = re.compile(r"[^/+#\x00]{1,128}")
_SCHEMES = ("mqtt://", "mqtts://")


def read_cache(section: TableReader, resolve: Resolve, environ: Mapping[str, str]) -> CacheSettings:
    raw = section.string("dir", "", nonempty=True)
    directory = resolve(raw) if raw else _default_cache(environ)
    return CacheSettings(dir=directory, max_mb=section.integer("max_mb", 200, Range(0, 1_000_000)))


def _default_cache(environ: Mapping[str, str]) -> Path:
    """systemd's CacheDirectory= when the unit has one, else $XDG_CACHE_HOME's."""
    systemd = environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd) / "phrases"
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg else Path(environ.get("HOME") or "~").expanduser() / ".cache"
    return base / "speechkit-player" / "phrases"


def read_mqtt(section: TableReader, resolve: Resolve) -> MqttSettings:
    default = MqttSettings()
    broker = section.string("broker", "").strip()
    if broker and not _is_broker(broker):
        section.error(
            "broker",
            f'expected "host:port", "mqtt://host:port" or "mqtts://host:port", found "{broker}"',
        )
        broker = ""
    ca_file = _file(section, "ca_file", resolve)
    if ca_file is not None and not broker.startswith("mqtts://"):
        section.error("ca_file", 'only used with an "mqtts://" broker')
    password_file = _file(section, "password_file", resolve)
    password = None
    if password_file is not None:
        text = read_secret_file(section, "password_file", password_file)
        password = Secret(text) if text is not None else None
    client_id = section.string("client_id", "") or socket.gethostname()
    if not _LEVEL.fullmatch(client_id):
        section.error("client_id", f"{_LEVEL_RULE}, found {client_id!r}")
    prefix = section.string("prefix", default.prefix, nonempty=True)
    if not all(_LEVEL.fullmatch(level) for level in prefix.split("/")):
        section.error(
            "prefix", f"expected topic levels joined by '/' ({_LEVEL_RULE}), found {prefix!r}"
        )
    return MqttSettings(
        broker=broker,
        ca_file=ca_file,
        username=section.string("username", ""),
        password=password,
        client_id=client_id,
        prefix=prefix,
        groups=_groups(section),
        homeassistant=section.boolean("homeassistant", default.homeassistant),
    )


_LEVEL_RULE = "expected 1 to 128 characters without '/', '+' or '#'"


def _is_broker(broker: str) -> bool:
    rest = broker
    for scheme in _SCHEMES:
        if broker.startswith(scheme):
            rest = broker[len(scheme) :]
            break
    else:
        if "://" in broker:
            return False
    if ":" not in rest:
        return bool(rest.strip()) and "/" not in rest
    return is_host_port(rest)


def _file(section: TableReader, key: str, resolve: Resolve) -> Path | None:
    raw = section.string(key, "")
    if not raw.strip():
        return None
    path = resolve(raw)
    if not path.is_file():
        section.error(key, f"no file at {path}")
        return None
    return path


def _groups(section: TableReader) -> tuple[str, ...]:
    value = section.get("groups")
    if value is MISSING:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        section.error("groups", f"expected an array of group names, found {describe(value)}")
        return ()
    bad = [group for group in value if not _LEVEL.fullmatch(group)]
    if bad:
        section.error("groups", f"{_LEVEL_RULE}, found {bad[0]!r}")
        return ()
    return tuple(dict.fromkeys(value))
