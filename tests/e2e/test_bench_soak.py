"""The soak, run once end to end as `bench/soak` runs it, for 45 s with one fault of
each kind of injection (a scripted call, the sound server, a local synthesizer, SIGHUP,
a burst, a big message on stdin): the table, the JSON and the plot. Its numbers are not
checked (a loaded CI machine may lose an utterance the soak is there to find), only that
every path ran and wrote its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.common import BENCH_STOP_TIMEOUT, run_benchmark

BENCH_TIMEOUT = 120.0
"""Seconds the soak may run: 45 s of speech, about 15 s to start (the Piper voice
loads twice) and to let the last utterances end."""
FAULTS = [
    "abort-internal",
    "hung-call",
    "sound-server-killed",
    "local-child-killed",
    "sighup",
    "burst",
    "stdin-100kb",
]
KEYS = {
    "settings", "counts", "lost", "failed", "faults", "resources", "samples", "daemons",
    "verdicts", "utterances",
}  # fmt: skip


@pytest.mark.timeout(BENCH_TIMEOUT + 3 * BENCH_STOP_TIMEOUT)
def test_soak_runs_each_kind_of_fault_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["--minutes", "0.75", "--fault-every", "6", "--sample-every", "10", "--burst", "3"]
    args += ["--faults", ",".join(FAULTS), "--out", str(out)]
    result = run_benchmark("bench.soak", BENCH_TIMEOUT, *args)

    # 1 is a verdict (an utterance lost, a resource grown), not a crash.
    assert result.returncode in (0, 1), result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert "recovered s" in result.stdout
    report = json.loads((out / "soak.json").read_text())
    assert set(report) == KEYS
    assert [f["name"] for f in report["faults"]] == FAULTS
    assert all({"at_s", "detail", "in_flight", "recovered_s"} <= set(f) for f in report["faults"])
    ways = {u["via"] for u in report["utterances"]}
    assert {"api", "api-stream", "cli", "cli-stdin", "burst", "cli-stdin-100kb"} <= ways
    assert {u["daemon"] for u in report["utterances"]} == {"tone", "local"}
    assert {u["outcome"] for u in report["utterances"]} <= {"finished", "failed", "lost"}
    counts = report["counts"]
    assert counts["said"] == counts["finished"] + counts["failed"] + counts["lost"]
    assert counts["lost"] == len(report["lost"]) == report["verdicts"]["lost"]
    assert set(report["resources"]) >= {"tone daemon", "local daemon"}
    assert len(report["samples"]) >= 3
    assert report["verdicts"]["passed"] is (result.returncode == 0)
    assert (out / "soak.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
