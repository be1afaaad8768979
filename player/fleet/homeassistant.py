"""Home Assistant MQTT discovery: each kiosk a `notify` entity.

Home Assistant sends a notify entity's message as the command payload. Its
`command_template` wraps the message in the JSON a `say` takes, so the say topic accepts
one format only and a plain text published there by anyone else is still refused.
"""

from __future__ import annotations

import json

from player import __version__
from player.config import MqttSettings
from player.fleet.topics import Topics

COMMAND_TEMPLATE = '{{ {"text": value} | tojson }}'
"""Jinja run by Home Assistant on the message: {"text": "<the message>"}."""


def discovery(settings: MqttSettings, topics: Topics) -> str:
    """The retained config published at `topics.homeassistant`."""
    ident = f"speechkit-player-{settings.client_id}"
    config = {
        "name": None,  # the device's name is the entity's
        "unique_id": ident,
        "command_topic": topics.own_say,
        "command_template": COMMAND_TEMPLATE,
        "qos": 1,
        "retain": False,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [ident],
            "name": settings.client_id,
            "manufacturer": "speechkit-player",
            "model": "speechkit-player",
            "sw_version": __version__,
        },
        "origin": {"name": "speechkit-player", "sw_version": __version__},
    }
    return json.dumps(config, ensure_ascii=False)
