"""The fleet benchmark, run once end to end as `bench/fleet` runs it, with 2 daemons and
one announcement: the table and the JSON. Its numbers are not checked (they depend on the
machine), only that each daemon was measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.common import BENCH_STOP_TIMEOUT, run_benchmark

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT = 120.0


@pytest.mark.timeout(BENCH_TIMEOUT + 3 * BENCH_STOP_TIMEOUT)
def test_fleet_bench_runs_once_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["--daemons", "2", "--announcements", "1", "--drops", "20", "--out", str(out)]
    result = run_benchmark("bench.fleet", BENCH_TIMEOUT, *args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "CPU µs/message" in result.stdout
    (row,) = json.loads((out / "fleet.json").read_text())["rows"]
    assert row["daemons"] == 2
    assert row["announcements"] == 1
    assert row["median_ms"] > 0
    assert row["max_ms"] >= row["median_ms"]
    assert row["spread_ms"] >= 0
    assert row["cpu_us_per_message"] >= 0
    assert row["rss_mb"] > 10
