"""The topics a kiosk uses, and Home Assistant's discovery config for it."""

from __future__ import annotations

import json

from player import __version__
from player.config import MqttSettings
from player.fleet.homeassistant import COMMAND_TEMPLATE, discovery
from player.fleet.topics import Topics

KIOSK = MqttSettings(broker="b:1883", client_id="k1", prefix="museum/fr", groups=("lobby", "f2"))


def test_a_kiosk_listens_to_its_own_topic_its_groups_and_all() -> None:
    topics = Topics.of(KIOSK)
    assert topics.say == (
        "museum/fr/k1/say",
        "museum/fr/group/lobby/say",
        "museum/fr/group/f2/say",
        "museum/fr/all/say",
    )
    assert topics.stop == tuple(t.removesuffix("say") + "stop" for t in topics.say)
    assert topics.subscriptions == topics.say + topics.stop
    assert topics.own_say == "museum/fr/k1/say"
    assert not any("+" in t or "#" in t for t in topics.subscriptions)


def test_a_kiosk_publishes_under_its_own_name() -> None:
    topics = Topics.of(KIOSK)
    assert topics.availability == "museum/fr/k1/availability"
    assert topics.state == "museum/fr/k1/state"
    assert topics.events == "museum/fr/k1/events"
    assert topics.homeassistant == "homeassistant/notify/k1/config"


def test_without_groups_only_its_own_and_all() -> None:
    topics = Topics.of(MqttSettings(broker="b", client_id="solo"))
    assert topics.say == ("speechkit-player/solo/say", "speechkit-player/all/say")


def test_home_assistant_sees_a_notify_entity_that_speaks_on_the_say_topic() -> None:
    topics = Topics.of(KIOSK)
    config = json.loads(discovery(KIOSK, topics))
    assert config["command_topic"] == "museum/fr/k1/say"
    assert config["command_template"] == COMMAND_TEMPLATE
    assert config["availability_topic"] == "museum/fr/k1/availability"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    assert config["unique_id"] == "speechkit-player-k1"
    assert config["device"]["identifiers"] == ["speechkit-player-k1"]
    assert config["device"]["name"] == "k1"
    assert config["device"]["sw_version"] == __version__
    assert config["retain"] is False
    assert config["qos"] == 1
