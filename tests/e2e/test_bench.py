"""The benchmark, run once end to end as `bench/run` runs it: every contender, the table,
the targets, the JSON and the timeline picture. Its numbers are not checked here (they
depend on the machine); that the whole path runs and writes its output is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.llm import STREAMED, WHOLE
from bench.report import CACHED, LOCAL, LONG_SLOW, NEW_USER, PATTERN_ROWS, SSIP_ROW
from tests.e2e.common import BENCH_STOP_TIMEOUT, run_benchmark

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Attention, please. The museum closes soon. Thank you."
"""Short, and sent by the daemon in pieces whose audio the tone server cuts into more
chunks than its chunk-size cycle alone gives: the timeline once crashed on such a text."""
API = "3a. daemon, control API"
BENCH_TIMEOUT = 120.0
"""Seconds the benchmark may run. One round takes about 45 s here, most of it fixed
measuring windows (CPU after speech and when idle, the callback floor) and Piper."""


@pytest.mark.timeout(BENCH_TIMEOUT + 3 * BENCH_STOP_TIMEOUT)
def test_bench_runs_once_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = run_benchmark("bench", BENCH_TIMEOUT, "--runs", "1", "--text", TEXT, "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert API in result.stdout
    assert LOCAL in result.stdout
    report = json.loads((out / "latest.json").read_text())
    assert set(report) == {"text", "server", "contenders", "targets", "runs"}
    assert report["text"] == TEXT
    assert report["contenders"][API]["runs"] == 1
    for row in (CACHED, *PATTERN_ROWS, STREAMED):
        assert row in result.stdout
        assert report["contenders"][row]["runs"] == 1
        assert any(goal["target"].startswith(row) for goal in report["targets"])
    assert report["contenders"][WHOLE]["runs"] == 1
    assert {NEW_USER, LONG_SLOW} <= set(report["server"]["patterns"])
    assert all({"target", "value", "met"} <= set(goal) for goal in report["targets"])
    (ssip,) = [goal for goal in report["targets"] if goal["target"].startswith(SSIP_ROW)]
    assert ssip["value"] > 0, ssip  # from exec to the wire: it takes some time
    assert (out / "timeline.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
