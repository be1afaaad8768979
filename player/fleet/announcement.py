"""A `say` payload, parsed: JSON with `text` (required), `priority`, `id` and `expires`.

A broker delivers a QoS 1 message at least once, and a sender may repeat one: `SeenIds`
keeps the last ids spoken so a repeat is dropped. A kiosk that was offline gets what was
queued for it; `expires` lets the sender say when an announcement is stale.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from player.errors import FleetError

MAX_PAYLOAD = 64 * 1024
"""Bytes of a `say` payload taken; more is refused unread (a text is at most a few
thousand characters)."""
MAX_ID = 256
"""Characters of an `id`."""
SEEN_IDS = 1024
"""Ids remembered: a repeat of one of the last this many announcements is dropped."""


@dataclass(frozen=True)
class Announcement:
    text: str
    priority: str = ""
    """speech-dispatcher's priority name; empty for the default."""
    id: str | None = None
    """The sender's id: the same id is spoken once."""
    expires: float | None = None
    """Unix time, seconds, after which it is dropped unspoken; None never expires."""

    def expired(self, now: float) -> bool:
        return self.expires is not None and now > self.expires


def parse(payload: bytes) -> Announcement:
    """The announcement in `payload`; raises FleetError saying, in one line, what is wrong."""
    if len(payload) > MAX_PAYLOAD:
        raise FleetError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise FleetError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise FleetError(f"payload is not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(data, dict):
        raise FleetError(f"expected a JSON object, found {_kind(data)}")
    text = data.get("text")
    if not isinstance(text, str):
        found = "none" if text is None else _kind(text)
        raise FleetError(f'"text" must be a string, found {found}')
    priority = data.get("priority", "")
    if not isinstance(priority, str):
        raise FleetError(f'"priority" must be a string, found {_kind(priority)}')
    ident = data.get("id")
    if ident is not None and (not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID):
        raise FleetError(f'"id" must be a string of 1 to {MAX_ID} characters')
    expires = data.get("expires")
    return Announcement(text, priority, ident, None if expires is None else _time(expires))


def _time(value: object) -> float:
    """ISO 8601 (a time without a zone is UTC) or Unix seconds, as Unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise FleetError('"expires" must be a finite number of seconds')
        return float(value)
    if not isinstance(value, str):
        raise FleetError(f'"expires" must be ISO 8601 or Unix seconds, found {_kind(value)}')
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise FleetError(f'"expires" is not an ISO 8601 time: {shown!r}') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


class SeenIds:
    """The last `capacity` ids, oldest forgotten first."""

    def __init__(self, capacity: int = SEEN_IDS) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, ident: str) -> bool:
        """True the first time `ident` is offered (since it was last forgotten)."""
        if ident in self._ids:
            self._ids.move_to_end(ident)
            return False
        self._ids[ident] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)
