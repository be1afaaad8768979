"""End to end: the phrase cache. Phrases spoken (or warmed) once play again from disk,
with no call to the service, and still play once the endpoint cannot be reached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Listener,
    heard_and_quiet,
    of,
    pieces,
    record_until,
    sound_s,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneServer, tone_frequency

PHRASE = "The museum closes in fifteen minutes."
OTHER = "Please make your way to the nearest exit."


async def _start(daemons: Daemons, endpoint: str, cache_dir: Path, **extra: object) -> Daemon:
    return await daemons.start(endpoint, KEY, cache={"dir": str(cache_dir), "max_mb": 50, **extra})


def _cache(status: dict[str, object]) -> dict[str, object]:
    cache = status["cache"]
    assert isinstance(cache, dict), status
    return cache


async def _say_and_record(daemon: Daemon, recorder: Recorder, text: str) -> np.ndarray:
    start = recorder.sample_count()
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", text)
    assert result.returncode == 0, result.stderr
    recording = await record_until(recorder, heard_and_quiet(0.3, since=start))
    return recording[start:]


async def test_a_phrase_said_again_plays_from_disk_as_the_service_spoke_it(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    daemon = await _start(daemons, tone_server.address, tmp_path / "cache")
    first = await _say_and_record(daemon, recorder, PHRASE)
    (call,) = await tone_server.wait_calls(1, TIMEOUT)

    async with Client(daemon.socket) as client, Listener(client) as events:
        again = await _say_and_record(daemon, recorder, PHRASE)
        started = await events.until("started")
        heard = await events.until("finished")

    # No second call, and what was heard is what the service sent the first time.
    assert len(tone_server.calls) == 1
    sent_s = len(call.audio) / 2 / RATE
    assert abs(sound_s(again) - sent_s) < 0.1, (sound_s(again), sent_s)
    expected_hz = tone_frequency(tone_server.script, PHRASE)
    assert abs(aa.dominant_frequency(again, RATE) - expected_hz) < 5
    assert abs(sound_s(again) - sound_s(first)) < 0.1
    # The text marks come back with it: listeners still learn what was heard.
    (first_audio,) = of(started, None, "started")
    assert isinstance(first_audio["first_audio_ms"], int)
    said = "".join(str(event["text"]) for event in of(heard, None, "text"))
    assert "".join(said.split()) == "".join(PHRASE.split())
    cache = _cache(await status_of(daemon))
    assert (cache["hits"], cache["misses"], cache["entries"]) == (1, 1, 1), cache
    assert isinstance(cache["size_bytes"], int)
    assert cache["size_bytes"] > 2 * RATE * sent_s


async def test_a_warmed_phrase_plays_with_the_endpoint_gone(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    daemon = await _start(daemons, tone_server.address, tmp_path / "cache")
    phrases = tmp_path / "phrases.txt"
    phrases.write_text(f"# the daily phrases\n{PHRASE}\n\n{OTHER}\n")
    warmed = await run_cli(daemon.config, daemon.env, "cache", "warm", str(phrases))
    assert warmed.returncode == 0, warmed.stderr
    assert warmed.stdout.count("cached: ") == 2, warmed.stdout
    assert len(tone_server.calls) == 2
    # Warming plays nothing.
    assert (await status_of(daemon))["counters"]["frames_played"] == 0  # type: ignore[index]
    again = await run_cli(daemon.config, daemon.env, "cache", "warm", str(phrases))
    assert again.stdout.count("already cached: ") == 2, again.stdout

    await tone_server.stop()
    heard = await _say_and_record(daemon, recorder, OTHER)
    assert abs(aa.dominant_frequency(heard, RATE) - tone_frequency(tone_server.script, OTHER)) < 5
    # What is not cached still needs the service, and says so in one line.
    missing = await run_cli(daemon.config, daemon.env, "say", "--wait", "Something new.")
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr

    listed = await run_cli(daemon.config, daemon.env, "cache", "list", "--json")
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["text"] for e in entries] == [OTHER, PHRASE]  # the last played first
    assert {e["engine"] for e in entries} == {f"speechkit:{tone_server.address}"}
    cleared = await run_cli(daemon.config, daemon.env, "cache", "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared: 2 phrase(s)" in cleared.stdout, cleared.stdout
    assert not list((tmp_path / "cache").glob("*.phrase"))


async def test_a_corrupt_entry_is_dropped_and_the_phrase_synthesised_again(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    daemon = await _start(daemons, tone_server.address, folder)
    await _say_and_record(daemon, recorder, PHRASE)
    (entry,) = folder.glob("*.phrase")
    data = bytearray(entry.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the audio
    entry.write_bytes(bytes(data))

    heard = await _say_and_record(daemon, recorder, PHRASE)

    assert len(tone_server.calls) == 2
    assert abs(aa.dominant_frequency(heard, RATE) - tone_frequency(tone_server.script, PHRASE)) < 5
    assert "dropped a corrupt phrase cache entry" in daemon.log
    (rewritten,) = folder.glob("*.phrase")
    assert rewritten.read_bytes() != bytes(data)


async def test_only_whole_utterances_are_kept(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    daemon = await _start(daemons, tone_server.address, tmp_path / "cache")
    async with Client(daemon.socket) as client, Listener(client) as events:
        # Streamed, and heard to its end: kept, under the text it spoke.
        streamed = await client.say(pieces("Streamed ", "to its ", "end."), wait=True)
        # Stopped while it plays: not kept.
        cut = await client.say(OTHER * 3)
        await events.until("started", cut.utterance_id)
        await client.stop()
        await events.until("cancelled", cut.utterance_id)
    assert streamed.played_ms > 0
    listed = await run_cli(daemon.config, daemon.env, "cache", "list", "--json")
    assert [json.loads(line)["text"] for line in listed.stdout.splitlines()] == [
        "Streamed to its end."
    ]


async def test_with_the_cache_off_its_commands_say_so(
    tone_server: ToneServer, daemons: Daemons, tmp_path: Path
) -> None:
    daemon = await _start(daemons, tone_server.address, tmp_path / "cache", max_mb=0)
    result = await run_cli(daemon.config, daemon.env, "cache", "list")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "speechkit-player: the phrase cache is off ([cache] max_mb = 0, or its folder could "
        "not be made: see the daemon's log)"
    ]
    assert (await status_of(daemon))["cache"] is None
    assert not (tmp_path / "cache").exists()


async def test_a_cached_phrase_cut_by_an_important_one_goes_on_from_the_cut_sentence(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    daemon = await _start(daemons, tone_server.address, tmp_path / "cache")
    text = f"{PHRASE} {OTHER} Thank you for your visit."
    await _say_and_record(daemon, recorder, text)
    assert len(tone_server.calls) == 1

    async with Client(daemon.socket) as client, Listener(client) as events:
        again = await client.say(text)
        # Into its second sentence, from the cache.
        await events.until("started", again.utterance_id)
        await events.count("text", again.utterance_id, 2)
        await client.say("Fire drill.", priority="important", wait=True)
        await events.until("interrupted", again.utterance_id)
        await events.finished(again.utterance_id)

    # Spoken on from the sentence that was cut, through the service: not from the start.
    calls = await tone_server.wait_calls(3, TIMEOUT)
    resumed = " ".join(calls[-1].texts)
    assert resumed.strip().startswith(OTHER), calls[-1].texts
    assert PHRASE not in resumed
