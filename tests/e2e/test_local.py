"""End to end with the local Piper synthesizer: the embedded default (no credentials, or
`endpoint = "local"`) and `fallback = "local"`, heard through the PulseAudio null sink."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneScript, ToneServer

RATE = 48000
TIMEOUT = 60.0
"""Seconds for the first utterance: the child loads its voice (a few seconds) first."""
KEY = "sk-test-key-0c4d1e"
SENTENCE = "Hello from the local synthesizer. It works without a network."

StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
def start_daemon(daemons: Daemons) -> StartDaemon:
    return daemons.start


def speech_heard(min_sound_s: float, after: int) -> Callable[[np.ndarray], bool]:
    """At least `min_sound_s` of sound after sample `after`, then 0.3 s of silence."""

    def check(x: np.ndarray) -> bool:
        spans = aa.sound_spans(x[after:], RATE)
        total = sum(end - start for start, end in spans)
        return total >= min_sound_s * RATE and len(x) - after - spans[-1][1] >= 0.3 * RATE

    check.__name__ = f"{min_sound_s:.1f} s of speech"
    return check


async def say_and_hear(daemon: Daemon, recorder: Recorder, text: str) -> tuple[float, np.ndarray]:
    """`say --wait TEXT`; returns the seconds it reports played and what was recorded."""
    before = recorder.sample_count()
    result = await asyncio.wait_for(
        run_cli(daemon.config, daemon.env, "say", "--wait", text), TIMEOUT
    )
    assert result.returncode == 0, result.stderr + daemon.log
    played_by = time.monotonic()
    played = float(result.stdout.split("played ")[1].split(" s")[0])
    heard = speech_heard(0.4 * played, before)

    def all_arrived(x: np.ndarray) -> bool:
        # A pause between sentences also looks like the end: wait until what arrives
        # was recorded after the last sample was played, whatever the sink's latency.
        return heard(x) and recorder.arrival_time(len(x) - 1) >= played_by + 0.3

    # Speech is at least 40 % sound: words, with pauses between them.
    x = await asyncio.to_thread(recorder.wait_until, all_arrived, TIMEOUT)
    return played, x[before:]


async def status(daemon: Daemon) -> dict[str, object]:
    result = await run_cli(daemon.config, daemon.env, "status")
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict)
    return parsed


@pytest.mark.parametrize(
    ("endpoint", "api_key", "reason"),
    [(None, None, "no SpeechKit key or token"), ("local", KEY, 'endpoint = "local"')],
    ids=["no-credentials", "endpoint-local"],
)
async def test_daemon_speaks_through_the_embedded_local_synthesizer(
    start_daemon: StartDaemon,
    recorder: Recorder,
    endpoint: str | None,
    api_key: str | None,
    reason: str,
) -> None:
    daemon = await start_daemon(endpoint, api_key)
    played, heard = await say_and_hear(daemon, recorder, SENTENCE)
    assert 0.03 * len(SENTENCE) < played < 0.15 * len(SENTENCE)
    spans = aa.sound_spans(heard, RATE)
    assert (spans[-1][1] - spans[0][0]) / RATE == pytest.approx(played, abs=0.5)
    assert f"{reason}: speaking through the local Piper synthesizer" in daemon.log
    assert "local synthesizer ready" in daemon.log
    state = await status(daemon)
    assert state["endpoint"] == "local"
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["utterances"], counters["errors"], counters["fallbacks"]) == (1, 0, 0)


def closed_port() -> str:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_unreachable_cloud_falls_back_to_the_local_synthesizer(
    start_daemon: StartDaemon, recorder: Recorder
) -> None:
    daemon = await start_daemon(closed_port(), KEY, speechkit={"fallback": "local"})
    for _ in range(2):
        played, _heard = await say_and_hear(daemon, recorder, SENTENCE)
        assert played > 1.0
    state = await status(daemon)
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["fallbacks"], counters["utterances"], counters["errors"]) == (2, 2, 0)
    assert str(state["endpoint"]).endswith("(fallback: local)")
    # One warning for the outage, not one per utterance.
    assert daemon.log.count("speaking through the local synthesizer") == 1
    assert KEY not in daemon.log


async def test_fallback_does_not_hide_a_rejected_key(
    start_daemon: StartDaemon, pulse: PulseServer
) -> None:
    tone = ToneServer(ToneScript(api_key=KEY))
    await tone.start()
    try:
        daemon = await start_daemon(tone.address, "wrong-key", speechkit={"fallback": "local"})
        result = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
        assert result.returncode == 1
        assert "authentication failed" in result.stderr
        counters = (await status(daemon))["counters"]
        assert isinstance(counters, dict)
        assert (counters["fallbacks"], counters["errors"]) == (0, 1)
    finally:
        await tone.stop()


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    """A file that passes the config's checks (it and its .json exist) but is no model."""
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model")
    Path(f"{model}.json").write_text("{}")
    return model


async def test_a_voice_that_cannot_load_fails_utterances_with_the_reason(
    start_daemon: StartDaemon, broken_model: Path
) -> None:
    model = broken_model
    daemon = await start_daemon("local", None, local={"model": str(model)})
    for _ in range(2):  # the second asks while the child is being restarted
        result = await asyncio.wait_for(
            run_cli(daemon.config, daemon.env, "say", "--wait", "Hello."), TIMEOUT
        )
        assert result.returncode == 1
        assert "the local synthesizer exited with code 1" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert daemon.alive
    assert f"cannot load the Piper voice {model}" in daemon.log
