"""The kiosk in a fleet: the link to the broker, announcements spoken, state and events
published, all beside playback until the daemon stops."""

from __future__ import annotations

import asyncio
import logging
import time

from player.config import MqttSettings
from player.control.server import PlayerService
from player.errors import FleetError, SpeechError
from player.fleet.announcement import SeenIds, parse
from player.fleet.homeassistant import discovery
from player.fleet.link import Link
from player.fleet.publisher import Publisher
from player.fleet.topics import Topics
from player.speech.requests import Origin, Speaker, priority_named

_LOGGER = logging.getLogger(__name__)

COMPLAINT_INTERVAL_S = 60.0
"""Seconds during which further bad messages are counted, not logged one by one."""


class Complaints:
    """Logs a bad message once, then at most one line per COMPLAINT_INTERVAL_S saying how
    many more came: a sender stuck in a loop cannot flood the journal."""

    def __init__(self, interval: float = COMPLAINT_INTERVAL_S) -> None:
        self._interval = interval
        self._logged_at = -interval
        self._quiet = 0
        self.count = 0
        """Bad messages so far."""

    def __call__(self, topic: str, why: str, now: float) -> None:
        self.count += 1
        if now - self._logged_at < self._interval:
            self._quiet += 1
            return
        more = f" ({self._quiet} more bad message(s) before it)" if self._quiet else ""
        _LOGGER.warning("ignored a message on %s: %s%s", topic, why, more)
        self._logged_at, self._quiet = now, 0


class Fleet:
    """Runs until cancelled; see the layer's docstring."""

    def __init__(self, settings: MqttSettings, speaker: Speaker, service: PlayerService) -> None:
        self._settings = settings
        self._speaker = speaker
        self.topics = Topics.of(settings)
        self._say = frozenset(self.topics.say)
        self._stop = frozenset(self.topics.stop)
        self._seen = SeenIds()
        self._complain = Complaints()
        self._link = Link(settings, self.topics, self._handle, self._connected)
        self._publisher = Publisher(self._link, self.topics, service, speaker.playback.events)
        self._announce_config = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._link.run())
            group.create_task(self._publisher.run())
            if self._settings.homeassistant:
                group.create_task(self._discovery())

    def _connected(self) -> None:
        self._publisher.reconnected()
        self._announce_config.set()

    async def _discovery(self) -> None:
        config = discovery(self._settings, self.topics)
        while True:
            await self._announce_config.wait()
            self._announce_config.clear()
            await self._link.publish(self.topics.homeassistant, config, qos=1, retain=True)

    async def _handle(self, topic: str, payload: bytes) -> None:
        if topic in self._stop:
            # Awaited here, so a `say` sent after a `stop` is not cancelled by it.
            await self._speaker.stop()
        elif topic in self._say:
            self._announce(topic, payload)

    def _announce(self, topic: str, payload: bytes) -> None:
        now = time.time()
        try:
            announcement = parse(payload)
        except FleetError as err:
            self._complain(topic, str(err), time.monotonic())
            return
        name = announcement.id or "without id"
        if announcement.expired(now):
            _LOGGER.info("announcement %s on %s expired; dropped", name, topic)
            return
        if announcement.id is not None and not self._seen.first_time(announcement.id):
            _LOGGER.debug("announcement %s on %s was spoken already; dropped", name, topic)
            return
        try:
            priority = priority_named(announcement.priority)
            utterance = self._speaker.say(announcement.text, priority, Origin("mqtt", topic))
        except SpeechError as err:
            self._complain(topic, str(err), time.monotonic())
            return
        if utterance is None:
            _LOGGER.info("announcement %s on %s has nothing to speak", name, topic)
            return
        _LOGGER.info("announcement %s on %s: speaking it as %s", name, topic, utterance.id)
