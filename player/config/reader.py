"""Reading typed values out of TOML tables while collecting every problem.

Messages name the key and the TOML type of a bad value, never the value itself: a
misplaced credential must not end up in an error.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")
_V = TypeVar("_V")
MISSING = object()


@dataclass(frozen=True)
class Range:
    """A closed, open or half-open interval, optionally also admitting 0 (meaning "auto")."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    or_zero: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return (self.or_zero and value == 0) or (above and below)

    def __str__(self) -> str:
        if math.isinf(self.hi):
            text = f"{'>' if self.lo_open else '>='} {fmt(self.lo)}"
        else:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            text = f"{left}{fmt(self.lo)}, {fmt(self.hi)}{right}"
        return f"0 or {text}" if self.or_zero else text


class TableReader:
    """Reads typed values out of one TOML table, recording problems instead of raising.

    Every getter returns its default when the key is absent or invalid, and remembers the
    key as known, so whatever is left over afterwards is an unknown key.
    """

    def __init__(self, name: str, table: Mapping[str, object], errors: list[str]) -> None:
        self.name = name
        self.table = table
        self.errors = errors
        self.known: list[str] = []
        self.failed: set[str] = set()

    def error(self, key: str, message: str) -> None:
        self.failed.add(key)
        self.errors.append(f"{self.name}.{key}: {message}")

    def get(self, key: str) -> object:
        self.known.append(key)
        return self.table.get(key, MISSING)

    def _typed(self, key: str, kind: type[_V], expected: str) -> _V | None:
        """The value when present and of `kind` (ints pass as floats, bools never as numbers)."""
        value = self.get(key)
        if value is MISSING:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        self.error(key, f"expected {expected}, found {describe(value)}")
        return None

    def string(self, key: str, default: _T, *, nonempty: bool = False) -> str | _T:
        value = self._typed(key, str, "a string")
        if value is not None and nonempty and not value.strip():
            self.error(key, "must not be empty")
            return default
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, "a boolean")
        return default if value is None else value

    def integer(self, key: str, default: int, valid: Range, note: str = "") -> int:
        value = self._typed(key, int, "an integer")
        if value is None or not self._in_range(key, value, valid, note):
            return default
        return value

    def number(self, key: str, default: _T, valid: Range | None, note: str = "") -> float | _T:
        value = self._typed(key, float, "a number")
        if value is None:
            return default
        if not math.isfinite(value):
            self.error(key, "expected a finite number")
            return default
        if valid is not None and not self._in_range(key, value, valid, note):
            return default
        return value

    def _in_range(self, key: str, value: float, valid: Range, note: str = "") -> bool:
        if value in valid:
            return True
        self.error(key, f"{fmt(value)} is out of range {valid}{note}")
        return False

    def report_unknown(self) -> None:
        for key in self.table:
            if key not in self.known:
                hint = suggest(key, self.known, '"%s"') or f"; valid keys: {', '.join(self.known)}"
                self.errors.append(f'unknown key [{self.name}] "{key}"{hint}')


def is_host_port(address: str) -> bool:
    """ "host:port" with a port from 1 to 65535."""
    host, colon, port = address.rpartition(":")
    return bool(host.strip()) and colon == ":" and port.isdigit() and 0 < int(port) < 65536


def suggest(name: str, choices: list[str], template: str) -> str:
    matches = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {template % matches[0]}?" if matches else ""


def describe(value: object) -> str:
    """The TOML type of a value, for messages that must not show the value itself."""
    return next((name for kind, name in _TOML_TYPES if isinstance(value, kind)), "a date/time")


_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
