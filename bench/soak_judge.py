"""What the soak (`bench/soak`) makes of what it saw: each utterance heard in full, failed
with a reason, or lost; how each fault went; whether memory, file descriptors and
threads stayed flat; and the summary it prints."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from bench.soak_faults import FaultRecord
from bench.soak_rig import Said, Target
from tests.harness.tone_server import ToneServer

SHORT_MS = 50
"""Milliseconds an utterance may play short of what it should and still count as heard
in full: `played_ms` is rounded down to a millisecond, the tone server rounds each
piece to a sample, and a fade takes 5 ms. A cut costs more than that: at least a
callback period of 10 ms per buffer lost, in practice hundreds of ms."""
SYNTHESIZED = re.compile(
    r"(?P<id>\S+): (?P<chars>\d+) chars, (?P<audio_s>[\d.]+) s of audio, first audio after"
    r" \d+ ms(?P<fallback> \(local fallback\))?"
)
"""The daemon's INFO line when an utterance's synthesis is done (speech/playback.py)."""
LOG_LINES = 40
"""Lines of a daemon's log kept with each lost utterance."""

TOLERANCE: dict[str, tuple[float, float]] = {
    "rss_mb": (10.0, 0.10),
    "fds": (4.0, 0.0),
    "threads": (2.0, 0.0),
}
"""Growth over the second half of the run (see `trend`) that still counts as flat:
(absolute, fraction of the start), whichever is larger. Memory: CPython keeps freed
arenas and grpc its buffers, so RSS steps by a few MB after a big message or a burst and
stays there; a leak of 10 kB per utterance is 10 MB an hour. fds: a client's connection
or a channel reconnecting holds one or two while a sample is taken. Threads: PortAudio's
callback thread and grpc's pollers come and go. A leak per fault (60 an hour) or per
utterance (about a thousand) passes any of these within minutes."""
EDGE_SAMPLES = 3


@dataclass
class Synthesized:
    chars: int
    audio_ms: int
    fallback: bool


def synthesized(log: str) -> dict[str, Synthesized]:
    """Per utterance id, what the daemon's log says its synthesis produced."""
    return {
        m["id"]: Synthesized(
            int(m["chars"]), round(float(m["audio_s"]) * 1000), bool(m["fallback"])
        )
        for m in SYNTHESIZED.finditer(log)
    }


def judge(said: Said, target: Target, done: dict[str, Synthesized]) -> None:
    """Fills in `said.outcome`: finished (heard in full), failed (with a reason) or lost
    (no answer within its bound, a crash, or audio cut short of what it should be)."""
    said.outcome = "lost"
    if said.hung:
        said.why = f"neither finished nor failed within {said.bound_s:.0f} s"
        return
    if said.crashed is not None:
        said.why = said.crashed
        return
    if said.error is not None:
        said.outcome, said.why = "failed", said.error
        return
    assert said.id is not None
    end = target.events.end(said.id)
    if end is not None and "played_ms" in end:
        said.played_ms = int(str(end["played_ms"]))  # exact; the CLI prints 10 ms steps
    info = done.get(said.id)
    said.fallback = info is not None and info.fallback
    if said.ms_per_char is not None and not said.fallback:
        said.expected_ms = round(said.chars * said.ms_per_char)
        source = "the tone server's length"
    elif info is not None:
        said.expected_ms = info.audio_ms
        source = "the audio the local voice made (daemon log)"
    else:
        said.outcome, said.why = "finished", "unchecked: no synthesis line in the log"
        return
    played = said.played_ms if said.played_ms is not None else 0
    if played + SHORT_MS < said.expected_ms:
        said.why = f"cut: played {played} ms of {said.expected_ms} ms ({source})"
        return
    said.outcome, said.why = "finished", source


def lost_details(said: Said, target: Target) -> dict[str, object]:
    """A lost utterance with the daemon's log lines from while it ran."""
    lines = target.log_between(*said.log_span).splitlines()
    lines = [line for line in lines if "ALSA" not in line and "underrun" not in line]
    return {**said.__dict__, "log": lines[-LOG_LINES:]}


def judge_fault(fault: FaultRecord, said: list[Said], tone: ToneServer) -> None:
    """What was running when it struck, and how long until each daemon it hit spoke a
    new utterance in full."""
    if fault.call is not None and fault.call < len(tone.calls):
        fault.call_status = tone.calls[fault.call].status.name
    over = fault.at_s + fault.took_s
    hit = [s for s in said if s.daemon in fault.targets]
    fault.in_flight = [
        f"{s.n}: {s.daemon} {s.via} {s.outcome}"
        for s in hit
        if s.sent_s <= over and (s.ended_s is None or s.ended_s >= fault.at_s)
    ]
    recovered: list[float] = []
    for name in fault.targets:
        after = [
            s.ended_s
            for s in hit
            if s.daemon == name
            and s.sent_s >= over
            and s.outcome == "finished"
            and s.ended_s is not None
        ]
        if not after:
            return
        recovered.append(min(after) - fault.at_s)
    fault.recovered_s = round(max(recovered), 2)


def trend(points: list[tuple[float, float]], metric: str) -> dict[str, object]:
    """First and last value, and the growth over the second half of the run (from the
    median of the first EDGE_SAMPLES samples there to that of the last ones, and the
    least-squares slope there, per hour): whether it is within TOLERANCE. A leak grows
    steadily, so it shows in the second half; what a process allocates once (the Piper
    model's arenas, CPython's after the 100 kB message) steps up early and stays."""
    half = [(t, v) for t, v in points if t >= (points[0][0] + points[-1][0]) / 2] if points else []
    if len(half) < 2:
        return {"samples": len(points), "flat": None}
    times, values = [t for t, _ in half], [v for _, v in half]
    start = statistics.median(values[:EDGE_SAMPLES])
    end = statistics.median(values[-EDGE_SAMPLES:])
    slope = statistics.linear_regression(times, values).slope if len(set(times)) > 1 else 0.0
    absolute, relative = TOLERANCE[metric]
    allowed = max(absolute, relative * start)
    return {
        "samples": len(points),
        "first": points[0][1],
        "last": points[-1][1],
        "half_start": start,
        "end": end,
        "growth": round(end - start, 2),
        "allowed": round(allowed, 2),
        "slope_per_hour": round(slope * 3600, 2),
        "flat": end - start <= allowed,
    }


def trends(
    samples: list[dict[str, object]], roles: list[str]
) -> dict[str, dict[str, dict[str, object]]]:
    """Per process and metric, its `trend`. A local synthesizer killed and started again
    is a new process: only the samples of the last one count."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    for role in roles:
        rows = [
            (float(str(s["t_s"])), p)
            for s in samples
            if isinstance(procs := s["procs"], dict) and isinstance(p := procs.get(role), dict)
        ]
        if not rows:
            continue
        last_pid = rows[-1][1]["pid"]
        rows = [(t, p) for t, p in rows if p["pid"] == last_pid]
        out[role] = {m: trend([(t, float(p[m])) for t, p in rows], m) for m in TOLERANCE}
    return out


def by_way(said: list[Said]) -> dict[str, dict[str, int]]:
    """Outcome counts per `daemon via`."""
    out: dict[str, dict[str, int]] = {}
    for s in said:
        row = out.setdefault(f"{s.daemon} {s.via}", {"finished": 0, "failed": 0, "lost": 0})
        row[s.outcome] += 1
    return out


def print_summary(report: dict[str, object]) -> None:
    counts = report["counts"]
    assert isinstance(counts, dict)
    print(f"{'daemon, way':<22}{'said':>6}{'finished':>10}{'failed':>8}{'lost':>6}")
    for way, row in counts["by_way"].items():
        said = sum(row.values())
        print(f"{way:<22}{said:>6}{row['finished']:>10}{row['failed']:>8}{row['lost']:>6}")
    print(
        f"{'all':<22}{counts['said']:>6}{counts['finished']:>10}{counts['failed']:>8}"
        f"{counts['lost']:>6}   (local fallbacks: {counts['fallbacks']})"
    )
    print(f"\n{'min':>5}  {'fault':<26}{'recovered s':>12}  in flight")
    for fault in report["faults"]:  # type: ignore[attr-defined]
        rec = "-" if fault["recovered_s"] is None else f"{fault['recovered_s']:.1f}"
        flying = "; ".join(fault["in_flight"]) or "-"
        print(f"{fault['at_s'] / 60:5.1f}  {fault['name']:<26}{rec:>12}  {flying}")
    print(
        f"\n{'process':<14}{'metric':<9}{'first':>8}{'last':>8}{'growth':>8}{'per hour':>10}  flat"
    )
    for role, metrics in report["resources"].items():  # type: ignore[attr-defined]
        for metric, t in metrics.items():
            if t["flat"] is None:
                continue
            print(
                f"{role:<14}{metric:<9}{t['first']:>8.1f}{t['last']:>8.1f}{t['growth']:>8.1f}"
                f"{t['slope_per_hour']:>10.1f}  {'yes' if t['flat'] else 'NO'}"
            )
    verdicts = report["verdicts"]
    assert isinstance(verdicts, dict)
    print(
        f"\nlost: {verdicts['lost']}; grew: {', '.join(verdicts['resources_grew']) or 'nothing'};"
        f" daemons ended cleanly: {verdicts['daemons_ended_cleanly']}"
    )
