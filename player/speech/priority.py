"""Speech-dispatcher's priorities, and what a new utterance does to the ones before it."""

from __future__ import annotations

import enum


class Priority(enum.StrEnum):
    IMPORTANT = "important"
    """Interrupts whatever plays; never dropped; queued behind earlier important ones."""
    MESSAGE = "message"
    """Waits its turn; cut by an important one, it is spoken again from the cut sentence."""
    TEXT = "text"
    """Interrupted (and dropped) by any newer text or higher."""
    NOTIFICATION = "notification"
    """Dropped if anything else is playing or queued; interrupted by text or higher."""
    PROGRESS = "progress"
    """Like notification, but the last one is always spoken, once the rest is done."""


class Fate(enum.Enum):
    KEEP = "keep"
    DROP = "drop"
    POSTPONE = "postpone"
    """Stop now and speak again later: a message from its cut sentence, a progress once
    nothing else is left (if no newer progress came meanwhile)."""


_PUSHES_ASIDE = frozenset({Priority.IMPORTANT, Priority.MESSAGE, Priority.TEXT})


def fate(old: Priority, new: Priority) -> Fate:
    """What an utterance of priority ``new``, just submitted, does to one of priority
    ``old`` that is queued or playing."""
    if new not in _PUSHES_ASIDE or old is Priority.IMPORTANT:
        return Fate.KEEP
    if old is Priority.MESSAGE:
        return Fate.POSTPONE if new is Priority.IMPORTANT else Fate.KEEP
    if old is Priority.PROGRESS:
        return Fate.POSTPONE
    return Fate.DROP
