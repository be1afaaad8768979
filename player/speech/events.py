"""What happens to utterances, as events for anyone listening (`speechkit-player events`).

Publishing never blocks the player: each listener has a bounded queue, and a listener
too slow to keep up loses its oldest events (counted in `EventBus.dropped`) rather than
holding up the audio or growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from player.synthesis.interface import WordTiming

Kind = Literal["queued", "started", "text", "interrupted", "finished", "cancelled", "error"]

LISTENER_QUEUE = 1000
"""Events kept for one listener that is not reading."""


@dataclass(frozen=True)
class Event:
    kind: Kind
    utterance_id: str
    time: float = field(default_factory=time.time)
    """Unix time, seconds."""
    first_audio_ms: int | None = None
    """started: from the request to its first sample leaving the output callback."""
    text: str | None = None
    """text: what is being spoken now; interrupted, cancelled: the text that was heard;
    error: the text whose audio stays to be heard (a call that broke off mid-way)."""
    start_ms: int | None = None
    """text: where in the utterance's audio it begins, milliseconds."""
    word_timings: tuple[WordTiming, ...] = ()
    """text: per word, when the service sends them."""
    played_ms: int | None = None
    """finished, interrupted, cancelled: audio that left the output callback (in all of
    the utterance's runs), milliseconds."""
    error: str | None = None
    """error: why, in one line."""
    reason: str | None = None
    """interrupted, cancelled: why (stopped, cancelled, dropped, which utterance pushed it
    aside)."""
    origin: str | None = None
    """queued: the front it was asked through ("control", "mqtt", "ssip")."""
    client: str | None = None
    """queued: the client's name for itself, where the front has one."""


class EventBus:
    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[Event]] = set()
        self.dropped = 0
        """Events listeners lost by not reading."""

    def publish(self, event: Event) -> None:
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(LISTENER_QUEUE)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
