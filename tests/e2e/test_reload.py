"""End to end: SIGHUP reads the config again. The queue and what plays are kept, the next
call speaks with the new voice and key, and a config that does not load is reported
while the daemon keeps the one it runs with."""

from __future__ import annotations

import asyncio
import signal

from player.control.client import Client
from tests.e2e.common import KEY, TIMEOUT, Listener, of
from tests.harness.daemon import Daemon, Daemons, run_cli, write_config
from tests.harness.tone_server import ToneScript, ToneServer

NEW_KEY = "sk-test-key-rotated-40c1"
LONG = "A long announcement that is still playing when the config changes. " * 2


async def _hangup(daemon: Daemon, expect: str) -> None:
    """SIGHUP, then wait for the log line that says how the reload went."""
    seen = daemon.log.count(expect)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    async with asyncio.timeout(TIMEOUT):
        while daemon.log.count(expect) == seen:
            assert daemon.alive, daemon.log
            await asyncio.sleep(0.05)


def _rewrite(
    daemon: Daemon, tone_server: ToneServer, api_key: str, **sections: dict[str, object]
) -> None:
    written = write_config(daemon.config.parent, tone_server.address, api_key=api_key, **sections)
    assert written == daemon.config


async def test_a_reload_keeps_the_queue_and_the_next_call_uses_the_new_voice_and_key(
    tone_server: ToneServer, daemons: Daemons
) -> None:
    daemon = await daemons.start(tone_server.address, KEY, voice={"voice": "marina"})
    async with Client(daemon.socket) as client, Listener(client) as listener:
        first = (await client.say(LONG)).utterance_id
        second = (await client.say("Queued behind it.")).utterance_id
        await listener.until("started", first)
        # The key rotates: the service takes only the new one from now on.
        tone_server.script = ToneScript(api_key=NEW_KEY)
        _rewrite(daemon, tone_server, NEW_KEY, voice={"voice": "alena"})
        await _hangup(daemon, "config reloaded")
        await listener.finished(first)
        await listener.finished(second)
        assert not of(listener.events, None, "cancelled")
        assert not of(listener.events, None, "error")

    said = await run_cli(daemon.config, daemon.env, "say", "--wait", "After the reload.")
    assert said.returncode == 0, said.stderr
    last = tone_server.calls[-1]
    assert last.options is not None
    assert last.options.voice == "alena"
    assert tone_server.calls[0].options is not None
    assert tone_server.calls[0].options.voice == "marina"
    assert "speechkit.api_key" in daemon.log
    assert KEY not in daemon.log
    assert NEW_KEY not in daemon.log


async def test_an_invalid_config_is_reported_and_the_old_one_kept(
    tone_server: ToneServer, daemons: Daemons
) -> None:
    daemon = await daemons.start(tone_server.address, KEY, voice={"voice": "marina"})
    _rewrite(daemon, tone_server, KEY, voice={"voice": "alena", "speed": 99.0})

    await _hangup(daemon, "config not reloaded")

    # The CLI would refuse the file too: a client that needs no config speaks.
    async with Client(daemon.socket) as client:
        await asyncio.wait_for(client.say("Still the old voice.", wait=True), TIMEOUT)
    options = tone_server.calls[-1].options
    assert options is not None
    assert options.voice == "marina"
    assert "voice.speed" in daemon.log


async def test_a_change_that_needs_a_restart_is_named_and_speech_goes_on(
    tone_server: ToneServer, daemons: Daemons
) -> None:
    daemon = await daemons.start(tone_server.address, KEY)
    _rewrite(daemon, tone_server, KEY, audio={"buffer_ms": 3000})

    await _hangup(daemon, "only after a restart: audio.buffer_ms")

    said = await run_cli(daemon.config, daemon.env, "say", "--wait", "Nothing restarted.")
    assert said.returncode == 0, said.stderr
