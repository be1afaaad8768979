"""End to end with the local Piper synthesizer: the embedded default (no credentials, or
`endpoint = "local"`) and `fallback = "local"`, heard through the PulseAudio null sink."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.common import KEY, RATE, closed_port, heard_and_quiet, record_until, status_of
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneServer

TIMEOUT = 60.0
"""Seconds for the first utterance: the child loads its voice (a few seconds) first. Longer
than the shared TIMEOUT, so it is passed to every wait here."""
SENTENCE = "Hello from the local synthesizer. It works without a network."


async def say_and_hear(daemon: Daemon, recorder: Recorder, text: str) -> tuple[float, np.ndarray]:
    """`say --wait TEXT`; returns the seconds it reports played and what was recorded."""
    before = recorder.sample_count()
    result = await asyncio.wait_for(
        run_cli(daemon.config, daemon.env, "say", "--wait", text), TIMEOUT
    )
    assert result.returncode == 0, result.stderr + daemon.log
    played_by = time.monotonic()
    played = float(result.stdout.split("played ")[1].split(" s")[0])
    heard = heard_and_quiet(0.4 * played, 0.3, since=before)

    def all_arrived(x: np.ndarray) -> bool:
        # A pause between sentences also looks like the end: wait until what arrives
        # was recorded after the last sample was played, whatever the sink's latency.
        return heard(x) and recorder.arrival_time(len(x) - 1) >= played_by + 0.3

    # Speech is at least 40 % sound: words, with pauses between them.
    x = await record_until(recorder, all_arrived, within=TIMEOUT)
    return played, x[before:]


@pytest.mark.parametrize(
    ("endpoint", "api_key", "reason"),
    [(None, None, "no SpeechKit key or token"), ("local", KEY, 'endpoint = "local"')],
    ids=["no-credentials", "endpoint-local"],
)
async def test_daemon_speaks_through_the_embedded_local_synthesizer(
    daemons: Daemons,
    recorder: Recorder,
    endpoint: str | None,
    api_key: str | None,
    reason: str,
) -> None:
    daemon = await daemons.start(endpoint, api_key)
    played, heard = await say_and_hear(daemon, recorder, SENTENCE)
    assert 0.03 * len(SENTENCE) < played < 0.15 * len(SENTENCE)
    spans = aa.sound_spans(heard, RATE)
    assert (spans[-1][1] - spans[0][0]) / RATE == pytest.approx(played, abs=0.5)
    assert f"{reason}: speaking through the local Piper synthesizer" in daemon.log
    assert "local synthesizer ready" in daemon.log
    state = await status_of(daemon)
    assert state["endpoint"] == "local"
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["utterances"], counters["errors"], counters["fallbacks"]) == (1, 0, 0)


async def test_unreachable_cloud_falls_back_to_the_local_synthesizer(
    daemons: Daemons, recorder: Recorder
) -> None:
    daemon = await daemons.start(closed_port(), KEY, speechkit={"fallback": "local"})
    for _ in range(2):
        played, _heard = await say_and_hear(daemon, recorder, SENTENCE)
        assert played > 1.0
    state = await status_of(daemon)
    counters = state["counters"]
    assert isinstance(counters, dict)
    assert (counters["fallbacks"], counters["utterances"], counters["errors"]) == (2, 2, 0)
    assert str(state["endpoint"]).endswith("(fallback: local)")
    # One warning for the outage, not one per utterance.
    assert daemon.log.count("speaking through the local synthesizer") == 1
    assert KEY not in daemon.log


async def test_fallback_does_not_hide_a_rejected_key(
    daemons: Daemons, tone_server: ToneServer, pulse: PulseServer
) -> None:
    # The shared tone server's default script requires KEY, like the cloud would.
    daemon = await daemons.start(tone_server.address, "wrong-key", speechkit={"fallback": "local"})
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", "Hello.")
    assert result.returncode == 1
    assert "authentication failed" in result.stderr
    counters = (await status_of(daemon))["counters"]
    assert isinstance(counters, dict)
    assert (counters["fallbacks"], counters["errors"]) == (0, 1)


async def test_a_voice_that_cannot_load_fails_utterances_with_the_reason(
    daemons: Daemons, broken_model: Path
) -> None:
    model = broken_model
    daemon = await daemons.start("local", None, local={"model": str(model)})
    for _ in range(2):  # the second asks while the child is being restarted
        result = await asyncio.wait_for(
            run_cli(daemon.config, daemon.env, "say", "--wait", "Hello."), TIMEOUT
        )
        assert result.returncode == 1
        assert "the local synthesizer exited with code 1" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert daemon.alive
    assert f"cannot load the Piper voice {model}" in daemon.log
