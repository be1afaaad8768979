"""Runs every contender on the same text and server settings, repeats each (rounds
interleave the contenders, so a noisy moment hits them alike), prints a table of medians
and p95s, checks the targets, writes it all as JSON and draws one daemon run as a PNG."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import llm, measure, ssip, system, timeline
from bench.measure import Run
from bench.report import (
    CACHED,
    DRIFTING,
    JITTERY,
    LOCAL,
    LONG_SLOW,
    NEW_USER,
    PER_SENTENCE,
    PIPER,
    STALLING,
    STEADY,
    print_tables,
    targets,
)
from player.control.client import Client
from tests.harness.daemon import Daemon, clean_env, run_cli, write_config
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneScript, ToneServer

TEXT = (
    "Attention, please. The museum closes in fifteen minutes. "
    "Please make your way to the nearest exit."
)
KEY = "bench-key"
FIRST_CHUNK_DELAY = 0.2
SCRIPT = ToneScript(
    api_key=KEY, first_chunk_delay=FIRST_CHUNK_DELAY, realtime_factor=1.2, jitter=0.08
)
TIMEOUT = 60.0
RESULTS = Path(__file__).resolve().parent / "results"

STEP_S, STALL_S = 0.08, 0.3
"""The drift's random-walk step and the stall's length, in seconds."""
WANDER_S, PAUSE_S = 0.12, (0.05, 0.15)
"""The new-user server's per-chunk offset, early or late (uniform +/-), and the range of
its pause before each sentence, in seconds."""
UNEVEN_CHUNKS = (3201, 9601, 6401)
"""The new-user server's chunk sizes, cycled: 33, 100 and 67 ms at 48 kHz, three-fold apart."""
LONG_REPEATS, LONG_REALTIME, LONG_WANDER_S = 3, 1.05, 0.05
"""Row 5g speaks the text this many times over, from a server this much faster than real
time, each chunk early or late by up to this many seconds: barely ahead, it wins back
little of any delay."""


def patterns(expected_s: float) -> dict[str, ToneScript]:
    """Row 5's bursty servers, one pattern each, all at SCRIPT's 1.2x real time and
    first-chunk delay. Only 5a keeps SCRIPT's jitter (it is SCRIPT, as row 3a), so a gap
    in 5b-5d is that pattern's own. 5e is the contrast: a steady server at 5x real time,
    which the jitter buffer must start as early as a fixed prebuffer did. 5f is a server
    none of those model, as a new user met it: every chunk early or late by its own
    offset, chunk sizes three-fold apart, a short pause before each sentence. 5g is that
    server barely faster than real time, on a long text (`long_text`), without the pauses:
    nine of them would eat its whole 5 % lead, and no buffer keeps a source that slow
    gapless."""
    plain = replace(SCRIPT, jitter=0.0)
    new_user = replace(SCRIPT, jitter=WANDER_S, chunk_bytes=UNEVEN_CHUNKS, piece_pause_s=PAUSE_S)
    return {
        JITTERY: SCRIPT,
        DRIFTING: replace(plain, drift=STEP_S),
        PER_SENTENCE: replace(plain, per_piece_delay=True),
        STALLING: replace(plain, stall_at_s=expected_s / 2, stall_for_s=STALL_S),
        STEADY: replace(plain, realtime_factor=5.0),
        NEW_USER: new_user,
        LONG_SLOW: replace(
            new_user, realtime_factor=LONG_REALTIME, jitter=LONG_WANDER_S, piece_pause_s=(0, 0)
        ),
    }


def long_text(text: str) -> str:
    """What row 5g speaks: ``text`` over and over."""
    return " ".join([text] * LONG_REPEATS)


Go = Callable[[], Awaitable[float]]


async def one(text: str) -> AsyncIterator[str]:
    yield text


@dataclass
class Bench:
    pulse: PulseServer
    recorder: Recorder
    tone: ToneServer
    folder: Path
    text: str
    expected_s: float = 0.0
    daemons: list[Daemon] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    async def daemon(
        self, endpoint: str, api_key: str | None, **sections: dict[str, object]
    ) -> Daemon:
        folder = self.folder / f"daemon{len(self.daemons)}"
        folder.mkdir()
        config = write_config(folder, endpoint, api_key=api_key, **sections)
        daemon = Daemon(config, clean_env(self.pulse.env))
        self.daemons.append(daemon)
        await daemon.start()
        return daemon

    async def timed(
        self, name: str, delay: float, go: Go, daemon: Daemon | None = None, min_s: float = 0.0
    ) -> Run:
        """Run `go()` (it returns the monotonic time it started) and measure the sink."""
        since = self.recorder.sample_count()
        before = await underruns(daemon) if daemon else 0
        started = await go()
        x = await asyncio.to_thread(
            measure.heard, self.recorder, since, min_s or 0.8 * self.expected_s, TIMEOUT
        )
        count = await underruns(daemon) - before if daemon else -1
        return measure.analyse(name, self.recorder, since, started, delay, x, count)


async def underruns(daemon: Daemon) -> int:
    async with Client(daemon.socket) as client:
        return int((await client.status()).counters.underruns)


def daemon_api(daemon: Daemon, text: str, starts: list[float] | None = None) -> Go:
    """A client that is already connected (an assistant keeps its connection), so the
    time counts from the request, not from making a connection."""

    async def go() -> float:
        async with Client(daemon.socket) as client:
            await client.status()
            started = time.monotonic()
            if starts is not None:
                starts.append(started)
            await asyncio.wait_for(client.say(text, wait=True), TIMEOUT)
        return started

    return go


def daemon_cli(daemon: Daemon, text: str) -> Go:
    async def go() -> float:
        started = time.monotonic()
        result = await run_cli(daemon.config, daemon.env, "say", "--wait", text)
        if result.returncode:
            raise RuntimeError(result.stderr)
        return started

    return go


def in_thread(client: Callable[[str, str, str], float], address: str, text: str) -> Go:
    async def go() -> float:
        return await asyncio.to_thread(client, address, KEY, text)

    return go


async def cloud_contenders(bench: Bench, runs: int) -> list[Run]:
    from bench.contenders import naive_stream, seed_way

    tone, address, text = bench.tone, bench.tone.address, bench.text
    daemon = await bench.daemon(address, KEY, ssip={"socket": str(bench.folder / "ssip.sock")})
    # Its own: the others must reach the server every time.
    phrases = {"dir": str(bench.folder / "phrases"), "max_mb": 50}
    cached = await bench.daemon(address, KEY, cache=phrases)
    warmed = await run_cli(cached.config, cached.env, "say", "--wait", text)
    if warmed.returncode:
        raise RuntimeError(warmed.stderr)
    # The bursty servers' delays are seeded by call number: without this call in the
    # count, every run measures the same patterns as runs before row 3c existed.
    tone.calls.pop()
    results: list[Run] = []
    api_starts: list[float] = []
    wire_ms: list[float] = []
    bursty = patterns(bench.expected_s)
    # Each row's text and the sound to wait for: all but 5g speak the bench text.
    texts = {name: text for name in bursty} | {LONG_SLOW: long_text(text)}
    min_sound = {LONG_SLOW: 0.8 * LONG_REPEATS * bench.expected_s}
    for i in range(runs):
        contenders: list[tuple[str, Go, Daemon | None, ToneScript]] = [
            ("1. seed: collect, WAV, play", in_thread(seed_way, address, text), None, SCRIPT),
            ("2. naive: blocking write per chunk", in_thread(naive_stream, address, text), None,
             SCRIPT),
            ("3a. daemon, control API", daemon_api(daemon, text, api_starts), daemon, SCRIPT),
            ("3b. daemon, CLI say", daemon_cli(daemon, text), daemon, SCRIPT),
            (CACHED, daemon_api(cached, text), cached, SCRIPT),
            *((name, daemon_api(daemon, texts[name]), daemon, script)
              for name, script in bursty.items()),
        ]  # fmt: skip
        for name, go, owner, script in contenders:
            calls = len(tone.calls)
            since = bench.recorder.sample_count()
            cpu = system.cpu_seconds(owner.proc.pid) if owner and owner.proc else 0.0
            tone.script = script  # a call keeps the script it started with
            delay = 0.0 if name == CACHED else FIRST_CHUNK_DELAY
            try:
                run = await bench.timed(name, delay, go, owner, min_sound.get(name, 0.0))
            finally:
                tone.script = SCRIPT
            if name == CACHED and len(tone.calls) != calls:
                raise RuntimeError("a cached phrase was synthesised again")
            if owner and owner.proc:
                run.extra["cpu_pct"] = round(
                    100 * (system.cpu_seconds(owner.proc.pid) - cpu) / (run.total_ms / 1000), 2
                )
            if name.startswith("3a"):
                first = tone.calls[calls].first_request_at
                assert first is not None
                wire_ms.append((first - api_starts[-1]) * 1000)
                bench.extra["timeline_call"] = (api_starts[-1], tone.calls[calls], since)
                bench.extra["timeline_underruns"] = run.underruns
            results.append(run)
        print(f"  round {i + 1}/{runs} of contenders 1-3 and 5 done", file=sys.stderr)
    bench.extra["wire_ms"] = wire_ms
    async with Client(daemon.socket) as client:
        status = await client.status()
    bench.extra["chunk_ms"] = {
        "chunks": status.chunk_latency.chunks,
        "median": status.chunk_latency.median_ms,
        "p95": status.chunk_latency.p95_ms,
        "max": status.chunk_latency.max_ms,
    }
    bench.extra["callback_us"] = {
        "calls": status.callback.calls,
        "median": status.callback.median_us,
        "p99": status.callback.p99_us,
        "max": status.callback.max_us,
    }
    await daemon_only(bench, daemon, runs)
    return results


async def daemon_only(bench: Bench, daemon: Daemon, runs: int) -> None:
    """Costs and limits of the daemon itself (no local engine)."""
    assert daemon.proc is not None
    pid = daemon.proc.pid
    # Idle right after speech (the stream still running), then once the daemon has
    # stopped the idle stream. The sleeps are the measuring windows, not waits for events.
    bench.extra["idle_running_cpu_pct"] = await cpu_over(pid, 3.0)
    async with asyncio.timeout(TIMEOUT), Client(daemon.socket) as client:
        # The daemon is another process: asking it is the only way to learn its state.
        while (await client.status()).stream != "idle":  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    bench.extra["idle_cpu_pct"] = await cpu_over(pid, 3.0)
    bench.extra["rss_mb"] = round(system.rss_mb(pid), 1)
    cli_ms = []
    for _ in range(runs):
        started = time.monotonic()
        result = await run_cli(daemon.config, daemon.env, "status")
        cli_ms.append((time.monotonic() - started) * 1000)
        assert result.returncode == 0, result.stderr
    bench.extra["cli_status_ms"] = cli_ms
    grpc_ms = []
    for _ in range(runs):
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import grpc")
        assert await proc.wait() == 0
        grpc_ms.append((time.monotonic() - started) * 1000)
    bench.extra["import_grpc_ms"] = grpc_ms
    slow = ToneScript(api_key=KEY, first_chunk_delay=FIRST_CHUNK_DELAY, realtime_factor=0.9)
    bench.tone.script = slow
    try:
        run = await bench.timed(
            "daemon at 0.9x real time", FIRST_CHUNK_DELAY, daemon_api(daemon, bench.text), daemon
        )
    finally:
        bench.tone.script = SCRIPT
    bench.extra["slow_server"] = run
    floor = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.floor", "3"],
        env={**os.environ, **bench.pulse.env},
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    bench.extra["floor"] = json.loads(floor.stdout.strip().splitlines()[-1])
    socket = str(bench.folder / "ssip.sock")
    bench.extra |= await ssip.exec_to_wire(daemon, bench.tone, socket, bench.text, runs)


async def cpu_over(pid: int, seconds: float) -> float:
    """CPU % of one core that `pid` used over the next `seconds`."""
    cpu = system.cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return round(100 * (system.cpu_seconds(pid) - cpu) / seconds, 2)


async def local_contenders(bench: Bench, runs: int) -> list[Run]:
    """Contender 4: the daemon with its Piper synthesizer against `piper --output-raw |
    aplay`, both warm, same voice, same text."""
    from player.local.engine import default_model

    daemon = await bench.daemon("local", None)
    await bench.timed("warm-up", 0.0, daemon_api(daemon, "Warming up."), daemon, min_s=0.3)
    pipeline = subprocess.Popen(
        f"{sys.executable} -m piper -m {default_model()} --output-raw"
        " | aplay -q -D pulse -r 22050 -f S16_LE -c 1 -t raw",
        shell=True,
        stdin=subprocess.PIPE,
        env=bench.pulse.env,
        stderr=subprocess.DEVNULL,
    )
    assert pipeline.stdin is not None
    stdin = pipeline.stdin

    async def piped() -> float:
        started = time.monotonic()
        stdin.write(bench.text.encode() + b"\n")
        stdin.flush()
        return started

    # Enough sound that a pause between sentences does not end the recording early, yet
    # less than Piper speaks for a short --text (about 1.7x the tone's length), or the
    # wait would time out: 2 s for the default text.
    min_s = min(2.0, 0.6 * bench.expected_s)
    results: list[Run] = []
    try:
        await bench.timed("warm-up", 0.0, piped, None, min_s=min_s)
        for i in range(runs):
            results.append(
                await bench.timed(LOCAL, 0.0, daemon_api(daemon, bench.text), daemon, min_s=min_s)
            )
            results.append(await bench.timed(PIPER, 0.0, piped, None, min_s=min_s))
            print(f"  round {i + 1}/{runs} of contender 4 done", file=sys.stderr)
    finally:
        stdin.close()
        pipeline.wait(TIMEOUT)
    results += await llm.rounds(bench, daemon, runs)
    return results


def draw_timeline(bench: Bench, path: Path) -> None:
    started, call, since = bench.extra["timeline_call"]
    rec = bench.recorder
    end = rec.index_at(call.finished_at + 1.5)
    step = 240  # 5 ms: each point is the loudest sample of its 5 ms
    x = np.abs(rec.samples()[since:end].astype(np.int32))
    x = x[: len(x) // step * step].reshape(-1, step).max(axis=1)
    times = np.array([rec.arrival_time(since + i * step) for i in range(len(x))])
    timeline.draw(
        path, started, call.chunk_times, call.chunk_sizes, x, times,
        int(bench.extra["timeline_underruns"]), 48000,
    )  # fmt: skip


async def run(runs: int, out: Path, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, PulseServer() as pulse, Recorder(pulse) as rec:
        os.environ.update(pulse.env)  # before sounddevice (PortAudio) is first imported
        tone = ToneServer(SCRIPT)
        await tone.start()
        bench = Bench(pulse, rec, tone, Path(tmp), text)
        bench.expected_s = len(tone.expected_pcm([text], 48000)) / 2 / 48000
        try:
            results = await cloud_contenders(bench, runs)
            results += await local_contenders(bench, runs)
            out.mkdir(parents=True, exist_ok=True)
            draw_timeline(bench, out / "timeline.png")
        finally:
            for daemon in bench.daemons:
                await daemon.stop()
            await tone.stop()
    names = list(dict.fromkeys(r.contender for r in results))
    table = {n: measure.summary([r for r in results if r.contender == n]) for n in names}
    bench.extra["api_runs"] = [r for r in results if r.contender.startswith("3a")]
    goals = targets(table, bench.extra)
    print_tables(table, goals)
    report = {
        "text": text,
        "server": {
            "first_chunk_delay_s": FIRST_CHUNK_DELAY,
            "realtime": 1.2,
            "jitter_s": 0.08,
            "patterns": {
                JITTERY: "jitter_s 0.08 (the server of rows 1-3)",
                DRIFTING: f"jitter_s 0, drift_step_s {STEP_S}",
                PER_SENTENCE: f"jitter_s 0, first_chunk_delay_s {FIRST_CHUNK_DELAY} per piece",
                STALLING: f"jitter_s 0, stall_s {STALL_S} at audio s {bench.expected_s / 2:.2f}",
                STEADY: "jitter_s 0, realtime 5",
                NEW_USER: f"jitter_s {WANDER_S} (each chunk early or late), chunk_bytes "
                f"{UNEVEN_CHUNKS} cycled, a pause of {PAUSE_S[0]}-{PAUSE_S[1]} s before each "
                "sentence after the first",
                LONG_SLOW: f"as {NEW_USER[:3]} but jitter_s {LONG_WANDER_S}, no pause before a "
                f"sentence, realtime {LONG_REALTIME}, the text {LONG_REPEATS} times over",
            },
        },
        "contenders": table,
        "targets": goals,
        "runs": [r.__dict__ for r in results],
    }
    (out / "latest.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"\nwrote {out / 'latest.json'} and {out / 'timeline.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each contender")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for JSON and PNG")
    parser.add_argument("--text", default=TEXT, help="what every contender speaks")
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.out, args.text))


if __name__ == "__main__":
    main()
