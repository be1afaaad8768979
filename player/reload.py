"""SIGHUP: the config read again and what of it the running daemon takes on.

A reload never touches the queue or what is playing. Voice, chimes, text and streaming
settings and the credentials take effect from the next synthesis call. What the daemon
built its device, sockets and child process from (the endpoint, [audio], [control],
[local], [metrics], [cache], [mqtt], [ssip]) needs a restart, which the log says. A config that
does not load is reported the same way as at start-up, and the running one is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from player.config import Settings, load_settings
from player.errors import PlayerError

_LOGGER = logging.getLogger(__name__)

# Keys the daemon built something from at start-up; None for a whole section.
_NEEDS_RESTART: Mapping[str, frozenset[str] | None] = {
    "speechkit": frozenset({"endpoint", "tls", "fallback", "retry_s"}),
    "audio": None,
    "control": None,
    "local": None,
    "metrics": None,
    "cache": None,
    "mqtt": None,
    "ssip": None,
}


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Every "section.key" whose value differs; values never appear (they may be secrets)."""
    keys: list[str] = []
    for section in dataclasses.fields(Settings):
        before, after = getattr(old, section.name), getattr(new, section.name)
        if not dataclasses.is_dataclass(before) or isinstance(before, type):
            continue
        keys.extend(
            f"{section.name}.{key.name}"
            for key in dataclasses.fields(before)
            if getattr(before, key.name) != getattr(after, key.name)
        )
    return keys


def needs_restart(key: str) -> bool:
    section, _, name = key.partition(".")
    if section not in _NEEDS_RESTART:
        return False
    names = _NEEDS_RESTART[section]
    return names is None or name in names


Apply = Callable[[Settings], None]
"""Takes on new settings; raises PlayerError, before changing anything, if it cannot."""


class Reloader:
    """Reads the config again and hands what changed to `apply`. Only the event loop
    calls it."""

    def __init__(
        self,
        settings: Settings,
        apply: Apply,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.settings = settings
        self._apply = apply
        self._environ = environ

    @property
    def source(self) -> Path | None:
        return self.settings.source

    def reload(self) -> bool:
        """True when the new config was taken on (or nothing changed)."""
        where = self.source or "the defaults"
        try:
            new = load_settings(self.source, self._environ)
        except PlayerError as err:
            _LOGGER.error("config not reloaded, the running one is kept: %s", err)
            return False
        changed = changed_keys(self.settings, new)
        if not changed:
            _LOGGER.info("config reloaded from %s: nothing changed", where)
            return True
        live = [key for key in changed if not needs_restart(key)]
        later = [key for key in changed if needs_restart(key)]
        # The restart-only keys keep their running values, so that a later reload
        # compares against what the daemon really runs with.
        effective = _merge(self.settings, new, later)
        if live:
            try:
                self._apply(effective)
            except PlayerError as err:
                _LOGGER.error("config not reloaded, the running one is kept: %s", err)
                return False
        self.settings = effective
        if live:
            _LOGGER.info("config reloaded from %s: %s", where, ", ".join(live))
        if later:
            _LOGGER.warning(
                "config changes that take effect only after a restart: %s", ", ".join(later)
            )
        return True


def _merge(running: Settings, new: Settings, keep: list[str]) -> Settings:
    """`new`, with the keys in `keep` at their running values."""
    merged = new
    for key in keep:
        section, _, name = key.partition(".")
        value = getattr(getattr(running, section), name)
        table = dataclasses.replace(getattr(merged, section), **{name: value})
        merged = dataclasses.replace(merged, **{section: table})
    return merged
