"""What the broker is told about this kiosk: its state (retained, on change) and every
event (QoS 0), in the JSON `speechkit-player status` and `events` print.

The state is the whole `status` object, but a new one is published only when something
other than the figures that move with every audio block changes (frames played, the
callback's and the chunks' timings): a queue that grows, an utterance that starts or
ends, a device that goes away. At most one per MIN_INTERVAL_S, the last change always
sent. Nothing is kept while the broker is away: on reconnecting the state is sent anew,
and the events of meanwhile are lost, as QoS 0 allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from player.control.server import PlayerService, event_message
from player.control.views import event_dict, status_dict
from player.fleet.link import Link
from player.fleet.topics import Topics
from player.speech.events import EventBus

MIN_INTERVAL_S = 0.5
"""Seconds between two state messages at least."""
POLL_S = 1.0
"""Seconds between looks at the state when no event comes (a device lost or back)."""
# Figures of `status` that move with every audio block: they alone publish nothing.
_MOVING = ("callback_us", "chunk_latency_ms")
_MOVING_COUNTERS = ("frames_played",)


def steady(status: dict[str, object]) -> dict[str, object]:
    """`status` without what moves with every audio block."""
    out = {k: v for k, v in status.items() if k not in _MOVING}
    counters = status.get("counters")
    if isinstance(counters, dict):
        out["counters"] = {k: v for k, v in counters.items() if k not in _MOVING_COUNTERS}
    return out


class Publisher:
    def __init__(
        self, link: Link, topics: Topics, service: PlayerService, events: EventBus
    ) -> None:
        self._link = link
        self._topics = topics
        self._service = service
        self._events = events
        self._changed = asyncio.Event()
        self._sent: dict[str, object] | None = None
        self.states = 0
        """State messages published."""

    def reconnected(self) -> None:
        """The broker may have lost the retained state: send it again."""
        self._sent = None
        self._changed.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._forward_events())
            group.create_task(self._publish_state())

    async def _forward_events(self) -> None:
        with self._events.listen() as queue:
            while True:
                event = await queue.get()
                self._changed.set()
                if self._link.connected:
                    body = json.dumps(event_dict(event_message(event)), ensure_ascii=False)
                    await self._link.publish(self._topics.events, body, qos=0)

    async def _publish_state(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._changed.wait()
            self._changed.clear()
            if not self._link.connected:
                continue
            status = status_dict(self._service.status())
            if steady(status) == self._sent:
                continue
            body = json.dumps(status, ensure_ascii=False)
            if await self._link.publish(self._topics.state, body, qos=1, retain=True):
                self._sent = steady(status)
                self.states += 1
            # Events that came meanwhile set `_changed` again: the next round sends the
            # state as it is then.
            await asyncio.sleep(MIN_INTERVAL_S)
