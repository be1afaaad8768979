"""End to end: `[metrics] listen` on a real daemon, scraped over HTTP the way Prometheus
does, and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from player import __version__
from tests.e2e.common import KEY, TIMEOUT, closed_port
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, write_config
from tests.harness.metric_types import ALWAYS_SERVED
from tests.harness.pulse import PulseServer
from tests.harness.tone_server import ToneServer

Families = dict[str, list[Sample]]
TEXT = "Metrics count this sentence."


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
        return reply.headers["Content-Type"], reply.read().decode()


async def _body(listen: str) -> str:
    return (await asyncio.to_thread(_get, f"http://{listen}/metrics"))[1]


async def scrape(listen: str) -> Families:
    content_type, body = await asyncio.to_thread(_get, f"http://{listen}/metrics")
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    return {f.name: f.samples for f in text_string_to_metric_families(body)}


def value(families: Families, name: str, **labels: str) -> float | None:
    family = name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    return next(
        (s.value for s in families.get(family, []) if s.name == name and s.labels == labels),
        None,
    )


def label_values(families: Families) -> set[str]:
    return {v for samples in families.values() for s in samples for v in s.labels.values()}


async def say(daemon: Daemon) -> tuple[int, str, str]:
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)
    return result.returncode, result.stdout.strip(), result.stderr


async def test_a_spoken_utterance_moves_its_counter_and_the_first_audio_histogram(
    tone_server: ToneServer, daemons: Daemons
) -> None:
    listen = closed_port()
    daemon = await daemons.start(tone_server.address, KEY, metrics={"listen": listen})

    before = await scrape(listen)
    types = {f.name: f.type for f in text_string_to_metric_families(await _body(listen))}
    assert {name: types.get(name) for name in ALWAYS_SERVED} == ALWAYS_SERVED
    assert value(before, "speechkit_player_build_info", version=__version__) == 1
    assert value(before, "speechkit_player_first_audio_seconds_count") == 0
    finished = {"priority": "message", "outcome": "finished"}
    assert value(before, "speechkit_player_utterances_total", **finished) == 0
    assert "speechkit_player_cloud_reachable" not in before  # no call, no verdict yet

    code, utterance_id, stderr = await say(daemon)
    assert code == 0, stderr

    after = await scrape(listen)
    assert value(after, "speechkit_player_utterances_total", **finished) == 1
    assert value(after, "speechkit_player_requests_total", origin="control") == 1
    assert value(after, "speechkit_player_first_audio_seconds_count") == 1
    assert (value(after, "speechkit_player_first_audio_seconds_sum") or 0) > 0
    assert value(after, "speechkit_player_cloud_reachable") == 1
    assert value(after, "speechkit_player_device_up") == 1
    assert value(after, "speechkit_player_queue_length") == 0
    assert value(after, "speechkit_player_synthesis_errors_total", code="UNAUTHENTICATED") is None
    labels = label_values(after)
    assert utterance_id not in labels
    assert not [v for v in labels if any(word in v for word in TEXT.split())], labels
    assert KEY not in await _body(listen)


@pytest.mark.parametrize(
    ("reach", "code"), [("wrong key", "UNAUTHENTICATED"), ("closed port", "UNAVAILABLE")]
)
async def test_a_failed_utterance_counts_its_grpc_code_and_reachability(
    tone_server: ToneServer, daemons: Daemons, reach: str, code: str
) -> None:
    listen = closed_port()
    wrong_key = reach == "wrong key"
    daemon = await daemons.start(
        tone_server.address if wrong_key else closed_port(),
        "wrong-key-7c1d" if wrong_key else KEY,
        metrics={"listen": listen},
        speechkit={"retry_s": 0, "connect_timeout": 1.0},
    )
    returncode, _, stderr = await say(daemon)
    assert returncode == 1, stderr

    families = await scrape(listen)
    assert value(families, "speechkit_player_synthesis_errors_total", code=code) == 1
    error = {"priority": "message", "outcome": "error"}
    assert value(families, "speechkit_player_utterances_total", **error) == 1
    assert value(families, "speechkit_player_first_audio_seconds_count") == 0
    # A server that refuses the key was reached; a closed port was not.
    assert value(families, "speechkit_player_cloud_reachable") == (1 if wrong_key else 0)
    assert "wrong-key-7c1d" not in await _body(listen)


async def test_a_taken_port_refuses_to_start_with_one_line(
    pulse: PulseServer, tone_server: ToneServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        config = write_config(
            tmp_path, tone_server.address, api_key=KEY, metrics={"listen": listen}
        )
        daemon = Daemon(config, clean_env(pulse.env))
        with pytest.raises(RuntimeError, match="daemon exited at start"):
            await daemon.start()
    assert daemon.proc is not None
    assert daemon.proc.returncode not in (0, None)
    log = daemon.log
    assert "Traceback" not in log, log
    errors = [line for line in log.splitlines() if "[metrics] listen" in line]
    assert len(errors) == 1, log
    assert f'[metrics] listen = "{listen}": cannot listen there' in errors[0]
    assert not daemon.socket.exists()
