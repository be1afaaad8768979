"""The connection to the broker, kept up forever.

Connecting runs in a worker thread and every wait on the broker is bounded, so a broker
that is down, slow or refusing holds up nothing but this task: speech never waits on it.
A lost connection is logged once when lost and once when restored, not per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from player.config import MqttSettings
from player.fleet.topics import Topics

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
"""Seconds before the first new attempt after a failure; doubled per failure."""
LAST_RETRY_S = 30.0
"""Seconds between attempts at most."""
STABLE_S = 10.0
"""Seconds a connection must have lasted for the next failure to retry from
FIRST_RETRY_S again (a broker that accepts and drops at once is not hammered)."""
KEEPALIVE_S = 30
"""Seconds between MQTT pings when idle; a broker silent for 1.5 times this is lost."""
BROKER_TIMEOUT_S = 5.0
"""Seconds the broker has to answer a connect, subscribe or QoS 1 publish."""
GOODBYE_S = 1.0
"""Seconds a stopping daemon gives the broker to take its `offline`."""
INCOMING = 1000
"""Messages waiting to be handled at most; more are dropped (and logged by aiomqtt)."""
ONLINE, OFFLINE = "online", "offline"

Handler = Callable[[str, bytes], Awaitable[None]]


class _ConnectionLoss(logging.Filter):
    """paho logs each failed read or write of a lost connection as an error; the link
    says once that the broker was lost."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("failed to ")


_PAHO = logging.getLogger(f"{__name__}.mqtt")
_PAHO.addFilter(_ConnectionLoss())


class Backoff:
    """0.5, 1, 2 ... 30 s, each drawn from its upper half, so a fleet that lost its broker
    at one instant does not come back at one instant."""

    def __init__(self, first: float = FIRST_RETRY_S, last: float = LAST_RETRY_S) -> None:
        self._first, self._last = first, last
        self._next = first

    def delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._last)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next = self._first


class Link:
    """Connects, subscribes with QoS 1, announces `online` (retained; `offline` is the
    will) and hands each message to `handle`; `on_connect` runs after each connection."""

    def __init__(
        self,
        settings: MqttSettings,
        topics: Topics,
        handle: Handler,
        on_connect: Callable[[], None],
        *,
        timeout: float = BROKER_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        """Seconds the broker has to answer."""
        self._topics = topics
        self._handle = handle
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._lost_at: float | None = None
        self._failing = False
        self.connections = 0
        """Connections made so far."""

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> bool:
        """False, at once, when there is no connection or it failed meanwhile."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=self._timeout)
        except aiomqtt.MqttError as err:
            _LOGGER.debug("publishing to %s failed: %s", topic, err)
            return False
        return True

    async def run(self) -> None:
        """Until cancelled; on cancellation `offline` is published, within GOODBYE_S."""
        backoff = Backoff()
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except aiomqtt.MqttError as err:
                self._failed(err)
            if time.monotonic() - started > STABLE_S:
                backoff.reset()
            await asyncio.sleep(backoff.delay())

    async def _session(self) -> None:
        client = self._new_client()
        try:
            await self._serve(client)
        finally:
            _discard(client)

    async def _serve(self, client: aiomqtt.Client) -> None:
        async with client:
            granted = await client.subscribe(
                [(topic, 1) for topic in self._topics.subscriptions], timeout=self._timeout
            )
            self._check(granted)
            # After subscribing: `online` tells a sender that what it sends now is heard.
            await client.publish(
                self._topics.availability, ONLINE, qos=1, retain=True, timeout=self._timeout
            )
            self._client = client
            try:
                self._connected()
                async for message in client.messages:
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else _bytes(payload)
                    await self._take(message.topic.value, data)
            except asyncio.CancelledError:
                await self._goodbye(client)
                raise
            finally:
                self._client = None

    async def _take(self, topic: str, payload: bytes) -> None:
        try:
            await self._handle(topic, payload)
        except Exception:
            # A bug handling one message must not end the kiosk's speech with it.
            _LOGGER.exception("a message on %s could not be handled", topic)

    def _new_client(self) -> aiomqtt.Client:
        settings = self._settings
        host, port = settings.address
        tls = None
        if settings.tls:
            ca = str(settings.ca_file) if settings.ca_file is not None else None
            tls = aiomqtt.TLSParameters(ca_certs=ca)
        return aiomqtt.Client(
            host,
            port,
            username=settings.username or None,
            password=settings.password.reveal() if settings.password else None,
            identifier=settings.client_id,
            logger=_PAHO,
            will=aiomqtt.Will(self._topics.availability, OFFLINE, qos=1, retain=True),
            # The broker keeps the subscriptions and queues QoS 1 announcements while the
            # kiosk is away; `expires` drops those that went stale meanwhile.
            clean_session=False,
            timeout=self._timeout,
            keepalive=KEEPALIVE_S,
            max_queued_incoming_messages=INCOMING,
            tls_params=tls,
        )

    def _check(self, granted: tuple[int, ...] | list[ReasonCode]) -> None:
        """Logs the subscriptions the broker refused (its ACL, say)."""
        for topic, code in zip(self._topics.subscriptions, granted, strict=False):
            value = code if isinstance(code, int) else getattr(code, "value", 0)
            if isinstance(value, int) and value >= 0x80:
                _LOGGER.warning("the MQTT broker refused the subscription to %s", topic)

    def _connected(self) -> None:
        self.connections += 1
        broker, me = self._settings.broker, self._settings.client_id
        if self._lost_at is not None:
            _LOGGER.info(
                "MQTT broker %s reached again after %.1f s",
                broker,
                time.monotonic() - self._lost_at,
            )
        else:
            _LOGGER.info("connected to MQTT broker %s as %s", broker, me)
        self._lost_at, self._failing = None, False
        self._on_connect()

    def _failed(self, err: aiomqtt.MqttError) -> None:
        if self._failing:
            _LOGGER.debug("MQTT broker %s: still unreachable: %s", self._settings.broker, err)
            return
        self._failing = True
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        verb = "lost" if self.connections else "cannot reach"
        _LOGGER.warning(
            "%s MQTT broker %s (%s); retrying in the background", verb, self._settings.broker, err
        )

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(GOODBYE_S):
                await client.publish(self._topics.availability, OFFLINE, qos=1, retain=True)


def _bytes(payload: str | bytearray | int | float | None) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytearray):
        return bytes(payload)
    return str(payload).encode()


def _discard(client: aiomqtt.Client) -> None:
    """Closes what a connect that timed out or was cancelled leaves open: otherwise a
    broker that accepts and never answers costs a socket per attempt, and the garbage
    collector closes it after the event loop is gone. paho's own close, so aiomqtt
    unregisters the socket while the loop runs; the client is thrown away, so its
    disconnect callback (which would look at a cancelled connect) is not wanted."""
    paho = client._client  # noqa: SLF001
    paho.on_disconnect = None
    paho._sock_close()  # noqa: SLF001
    # aiomqtt connects on a worker thread, which a cancel does not stop: a connect still
    # under way opens its socket after this. Closed at once, there, without the loop
    # (which may be gone by then).
    paho.on_socket_open = _close_late


def _close_late(paho: mqtt.Client, userdata: object, sock: object) -> None:
    paho.on_socket_close = None
    paho.on_socket_register_write = None
    paho.on_socket_unregister_write = None
    paho._sock_close()  # noqa: SLF001
