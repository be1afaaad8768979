"""Every topic a kiosk uses, built once from its settings.

The fleet's topics are fixed strings with no wildcard of the kiosk's own: a kiosk
subscribes to exactly its say/stop topics (its own, one per group, and `all`), so a
broker delivers an announcement only to the kiosks it is meant for, and a broker cluster
can route by the first levels alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from player.config import MqttSettings

ALL = "all"
GROUP = "group"


@dataclass(frozen=True)
class Topics:
    say: tuple[str, ...]
    """Where announcements come from: this kiosk's own, its groups', everyone's."""
    stop: tuple[str, ...]
    """Where `stop` comes from, the same three kinds."""
    availability: str
    """Retained "online" / "offline" (the last will)."""
    state: str
    """Retained status JSON."""
    events: str
    """Every event, QoS 0."""
    homeassistant: str
    """Home Assistant's discovery config for this kiosk."""

    @classmethod
    def of(cls, settings: MqttSettings) -> Topics:
        prefix, me = settings.prefix, settings.client_id
        targets = (me, *(f"{GROUP}/{g}" for g in settings.groups), ALL)
        return cls(
            say=tuple(f"{prefix}/{target}/say" for target in targets),
            stop=tuple(f"{prefix}/{target}/stop" for target in targets),
            availability=f"{prefix}/{me}/availability",
            state=f"{prefix}/{me}/state",
            events=f"{prefix}/{me}/events",
            homeassistant=f"homeassistant/notify/{me}/config",
        )

    @property
    def own_say(self) -> str:
        return self.say[0]

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (*self.say, *self.stop)
