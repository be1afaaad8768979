"""An MQTT client for tests and bench/fleet: publishes, and keeps every message on the
topics it watches, with bounded waits on them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import aiomqtt

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retained: bool
    at: float
    """Unix time, seconds, of arrival here."""

    def json(self) -> object:
        return json.loads(self.payload)

    @property
    def client(self) -> str:
        """The second-to-last topic level: the kiosk of {prefix}/{client}/{kind}."""
        return self.topic.split("/")[-2]


Match = Callable[[Received], bool]


class Watch:
    """Connected to `address` ("host:port"), subscribed to `topics` (QoS 1)."""

    def __init__(self, address: str, topics: Sequence[str], client_id: str = "") -> None:
        host, _, port = address.rpartition(":")
        self._client = aiomqtt.Client(
            host, int(port), identifier=client_id or None, timeout=CONNECT_TIMEOUT
        )
        self._topics = list(topics)
        self.received: list[Received] = []
        self._arrived = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._events: dict[str, list[dict[str, object]]] = {}
        self._counts: dict[tuple[str, str], int] = {}

    async def __aenter__(self) -> Watch:
        await self._client.__aenter__()
        for topic in self._topics:
            await self._client.subscribe(topic, qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(kind, value, tb)

    async def _collect(self) -> None:
        async for message in self._client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            got = Received(message.topic.value, data, message.retain, time.time())
            if got.topic.endswith("/events"):
                event = got.json()
                assert isinstance(event, dict)
                self._events.setdefault(got.client, []).append(event)
                kind = (got.client, str(event["event"]))
                self._counts[kind] = self._counts.get(kind, 0) + 1
            async with self._arrived:
                self.received.append(got)
                self._arrived.notify_all()

    async def publish(
        self, topic: str, payload: str | bytes | dict[str, object], *, qos: int = 1
    ) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        await self._client.publish(topic, body, qos=qos)

    def matching(self, match: Match) -> list[Received]:
        return [r for r in self.received if match(r)]

    async def until(self, match: Match, timeout: float, count: int = 1) -> list[Received]:  # noqa: ASYNC109
        """The first `count` messages matching, once they arrived (TimeoutError after
        `timeout` s)."""
        await self.holds(lambda: len(self.matching(match)) >= count, timeout)
        return self.matching(match)[:count]

    async def holds(self, condition: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        """Returns once `condition` holds, looked at as each message arrives."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(condition)

    def events(self, client: str) -> list[dict[str, object]]:
        """The events {prefix}/`client`/events carried, parsed."""
        return list(self._events.get(client, ()))

    def count(self, client: str, kind: str) -> int:
        """How many `kind` events `client` sent."""
        return self._counts.get((client, kind), 0)

    def spoken(self, client: str) -> list[str]:
        """The text of each utterance `client` finished playing, in order."""
        events = self.events(client)
        texts: dict[object, list[str]] = {}
        for e in events:
            if e["event"] == "text":
                texts.setdefault(e["id"], []).append(str(e["text"]))
        return [
            " ".join(texts.get(e["id"], []))
            for e in events
            if e["event"] == "finished" and int(str(e.get("played_ms", 0))) > 0
        ]


def topic_is(topic: str) -> Match:
    return lambda r: r.topic == topic


def payload_is(topic: str, payload: str) -> Match:
    return lambda r: r.topic == topic and r.payload == payload.encode()
