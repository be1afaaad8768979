"""End to end, issue 14: kiosks on a real Mosquitto broker speaking announcements sent to
one of them, a group or all, and telling the broker whether they are there."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.common import KEY, TIMEOUT, closed_port, status_of
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, write_config
from tests.harness.mosquitto import Broker
from tests.harness.mqtt_watch import Watch, payload_is, topic_is
from tests.harness.pulse import PulseServer
from tests.harness.tone_server import ToneServer

P = "speechkit-player"
WATCHED = [f"{P}/+/events", f"{P}/+/availability", f"{P}/+/state"]


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


def mqtt(broker: Broker, client_id: str, **more: object) -> dict[str, object]:
    return {"broker": broker.address, "client_id": client_id, **more}


async def kiosk(
    daemons: Daemons, tone_server: ToneServer, broker: Broker, client_id: str, **more: object
) -> Daemon:
    return await daemons.start(tone_server.address, KEY, mqtt=mqtt(broker, client_id, **more))


async def online(watch: Watch, *clients: str) -> None:
    """Once each client said it is online, so subscribed."""
    for client in clients:
        await watch.until(payload_is(f"{P}/{client}/availability", "online"), TIMEOUT)


async def spoken(watch: Watch, client: str, text: str) -> None:
    await watch.holds(lambda: text in watch.spoken(client), TIMEOUT)


def say(text: str, **more: object) -> dict[str, object]:
    return {"text": text, **more}


async def test_a_group_announcement_is_heard_on_its_members_and_no_other(
    broker: Broker, tone_server: ToneServer, daemons: Daemons
) -> None:
    for name in ("k1", "k2"):
        await kiosk(daemons, tone_server, broker, name, groups=["lobby"])
    await kiosk(daemons, tone_server, broker, "k3", groups=["cafe"])
    async with Watch(broker.address, WATCHED) as watch:
        await online(watch, "k1", "k2", "k3")
        await watch.publish(f"{P}/group/lobby/say", say("Lobby closes soon", id="g1"))
        await watch.publish(f"{P}/k3/say", say("Cafe only", id="d3"))
        await spoken(watch, "k1", "Lobby closes soon")
        await spoken(watch, "k2", "Lobby closes soon")
        # k3 is sent its own after the group's: had it taken the group's, it would have
        # spoken (or at least queued) it first.
        await spoken(watch, "k3", "Cafe only")
        queued = [e for e in watch.events("k3") if e["event"] == "queued"]
        assert len(queued) == 1, watch.events("k3")
        assert watch.spoken("k3") == ["Cafe only"]
        # And `all` reaches everyone.
        await watch.publish(f"{P}/all/say", say("Everyone"))
        for name in ("k1", "k2", "k3"):
            await spoken(watch, name, "Everyone")
    calls = await tone_server.wait_calls(6, TIMEOUT)
    texts = sorted(" ".join("".join(call.texts).split()) for call in calls)
    assert texts == sorted(["Lobby closes soon"] * 2 + ["Cafe only"] + ["Everyone"] * 3)


async def test_a_duplicate_id_is_spoken_once_and_an_expired_one_never(
    broker: Broker, tone_server: ToneServer, daemons: Daemons
) -> None:
    await kiosk(daemons, tone_server, broker, "k1")
    later = datetime.now(UTC) + timedelta(hours=1)
    async with Watch(broker.address, WATCHED) as watch:
        await online(watch, "k1")
        say_topic = f"{P}/k1/say"
        await watch.publish(say_topic, say("Twice sent", id="dup"))
        await watch.publish(f"{P}/all/say", say("Twice sent", id="dup"))
        await watch.publish(say_topic, say("Last night", expires=time.time() - 60))
        stale_iso = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
        await watch.publish(say_topic, say("Also stale", expires=stale_iso))
        await watch.publish(say_topic, say("Still fresh", expires=later.isoformat(), id="f"))
        await watch.publish(say_topic, say("Fresh by number", expires=time.time() + 3600))
        await spoken(watch, "k1", "Fresh by number")
        assert watch.spoken("k1") == ["Twice sent", "Still fresh", "Fresh by number"]


async def test_the_daemons_reconnect_after_the_broker_restarts(
    broker: Broker, tone_server: ToneServer, daemons: Daemons
) -> None:
    daemon = await kiosk(daemons, tone_server, broker, "k1")
    await kiosk(daemons, tone_server, broker, "k2")
    async with Watch(broker.address, WATCHED) as watch:
        await online(watch, "k1", "k2")
    await asyncio.to_thread(broker.restart)
    async with Watch(broker.address, WATCHED) as watch:
        # The restarted broker kept nothing: "online" is the daemons' own, anew.
        await online(watch, "k1", "k2")
        await watch.publish(f"{P}/all/say", say("After the restart"))
        await spoken(watch, "k1", "After the restart")
        await spoken(watch, "k2", "After the restart")
    assert daemon.log.count("lost MQTT broker") == 1, daemon.log
    assert daemon.log.count("reached again") == 1, daemon.log


async def test_availability_turns_offline_when_a_daemon_is_killed_or_stopped(
    broker: Broker, tone_server: ToneServer, daemons: Daemons, pulse: PulseServer, tmp_path: Path
) -> None:
    folder = tmp_path / "killed"
    folder.mkdir()
    config = write_config(folder, tone_server.address, api_key=KEY, mqtt=mqtt(broker, "k1"))
    killed = Daemon(config, clean_env(pulse.env))
    stopped = await kiosk(daemons, tone_server, broker, "k2")
    await killed.start()
    try:
        async with Watch(broker.address, WATCHED) as watch:
            await online(watch, "k1", "k2")
            assert killed.proc is not None
            killed.proc.kill()
            await watch.until(payload_is(f"{P}/k1/availability", "offline"), TIMEOUT)
            assert await stopped.stop() == 0
            await watch.until(payload_is(f"{P}/k2/availability", "offline"), TIMEOUT)
        # Retained: a client that comes later is told too.
        async with Watch(broker.address, [f"{P}/+/availability"]) as late:
            for name in ("k1", "k2"):
                (got,) = await late.until(topic_is(f"{P}/{name}/availability"), TIMEOUT)
                assert got.retained
                assert got.payload == b"offline"
    finally:
        await killed.stop()


async def test_state_and_events_carry_the_status_and_events_json(
    broker: Broker, tone_server: ToneServer, daemons: Daemons, tmp_path: Path
) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text("hunter2-not-for-logs\n")
    daemon = await kiosk(
        daemons, tone_server, broker, "k1", username="kiosk", password_file=str(password)
    )
    async with Watch(broker.address, WATCHED) as watch:
        await online(watch, "k1")
        await watch.publish(f"{P}/k1/say", say("State and events"))
        await spoken(watch, "k1", "State and events")
        status = await status_of(daemon)
        # The last state published once the utterance ended says so.
        await watch.holds(lambda: _utterances(_last_state(watch)) == 1, TIMEOUT)
        state = _last_state(watch)
    assert state.keys() == status.keys()
    assert state["state"] == "idle"
    assert state["device"] == status["device"]
    assert [m.retained for m in watch.matching(topic_is(f"{P}/k1/state"))][-1] is False  # live
    kinds = [e["event"] for e in watch.events("k1")]
    assert kinds[:2] == ["queued", "started"]
    assert kinds[-1] == "finished"
    started = next(e for e in watch.events("k1") if e["event"] == "started")
    assert set(started) == {"event", "id", "time", "first_audio_ms"}
    assert "hunter2" not in daemon.log
    assert "hunter2" not in json.dumps(status)
    async with Watch(broker.address, [f"{P}/k1/state"]) as late:
        (got,) = await late.until(topic_is(f"{P}/k1/state"), TIMEOUT)
    assert got.retained
    assert json.loads(got.payload).keys() == status.keys()


def _utterances(state: dict[str, object]) -> object:
    counters = state.get("counters")
    return counters.get("utterances") if isinstance(counters, dict) else None


def _last_state(watch: Watch) -> dict[str, object]:
    states = watch.matching(topic_is(f"{P}/k1/state"))
    if not states:
        return {}
    state = states[-1].json()
    assert isinstance(state, dict)
    return state


async def test_bad_payloads_are_logged_once_and_the_daemon_keeps_serving(
    broker: Broker, tone_server: ToneServer, daemons: Daemons
) -> None:
    daemon = await kiosk(daemons, tone_server, broker, "k1")
    async with Watch(broker.address, WATCHED) as watch:
        await online(watch, "k1")
        for bad in (b"not json", b'{"text": 5}', b"\xff\xfe", b"[1, 2]", b"x" * 200_000):
            await watch.publish(f"{P}/k1/say", bad)
        await watch.publish(f"{P}/k1/say", say("Still here", priority="nonsense"))
        await watch.publish(f"{P}/k1/say", say("Still here"))
        await spoken(watch, "k1", "Still here")
        # `stop` takes any payload, an empty one too.
        await watch.publish(f"{P}/k1/stop", b"")
        await watch.publish(f"{P}/k1/say", say("And after a stop"))
        await spoken(watch, "k1", "And after a stop")
    lines = [line for line in daemon.log.splitlines() if "ignored a message" in line]
    assert len(lines) == 1, daemon.log
    assert "not JSON" in lines[0]
    assert len(lines[0]) < 300
    assert "Traceback" not in daemon.log


async def test_a_broker_down_at_start_holds_up_no_speech_and_is_joined_when_it_comes(
    tone_server: ToneServer, daemons: Daemons
) -> None:
    port = int(closed_port().rpartition(":")[2])
    later = Broker(port)
    daemon = await daemons.start(
        tone_server.address, KEY, mqtt={"broker": later.address, "client_id": "k1"}
    )
    said = await run_cli(daemon.config, daemon.env, "say", "--wait", "No broker needed")
    assert said.returncode == 0, said.stderr
    assert daemon.log.count("cannot reach MQTT broker") == 1, daemon.log
    with later:
        async with Watch(later.address, WATCHED) as watch:
            await online(watch, "k1")
            await watch.publish(f"{P}/k1/say", say("Now through the broker"))
            await spoken(watch, "k1", "Now through the broker")
    assert daemon.log.count("cannot reach MQTT broker") == 1, daemon.log


async def test_home_assistant_discovery_makes_the_kiosk_a_notify_entity(
    broker: Broker, tone_server: ToneServer, daemons: Daemons
) -> None:
    await kiosk(daemons, tone_server, broker, "k1", homeassistant=True)
    async with Watch(broker.address, [*WATCHED, "homeassistant/#"]) as watch:
        await online(watch, "k1")
        (found,) = await watch.until(topic_is("homeassistant/notify/k1/config"), TIMEOUT)
        config = found.json()
        assert isinstance(config, dict)
        assert config["availability_topic"] == f"{P}/k1/availability"
        # What Home Assistant publishes for a notify message, its command_template applied.
        await watch.publish(config["command_topic"], json.dumps({"text": 'Say "hi"'}))
        await spoken(watch, "k1", 'Say "hi"')
