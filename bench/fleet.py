"""The fleet on one machine: N daemons (each on the one null sink, all speaking through
one tone server) on one Mosquitto broker. An announcement to `all` is timed from its
publishing to each daemon's first audio (the `started` event's time, when its first
sample left the output callback); then a burst of messages each daemon only parses and
drops (a repeated id) gives the CPU one broker message costs a daemon.

    bench/fleet [--daemons 10,50] [--announcements 5] [--drops 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import system
from tests.harness.daemon import Daemon, clean_env, write_config
from tests.harness.mosquitto import Broker
from tests.harness.mqtt_watch import Watch, payload_is
from tests.harness.pulse import PulseServer
from tests.harness.tone_server import ToneScript, ToneServer

KEY = "bench-key"
PREFIX = "speechkit-player"
TEXT = "Attention, please. The museum closes in fifteen minutes."
TIMEOUT = 120.0
"""Seconds one step may take (a batch of daemons starting, an announcement heard)."""
BATCH = 5
"""Daemons started at once: a 2-core machine starting 50 Pythons at once thrashes."""
IDLE_S = 3.0
"""Seconds of idle CPU measured to subtract from the burst's."""
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    daemons: int
    announcements: int
    median_ms: float
    """Publish to first audio, over every daemon and announcement."""
    max_ms: float
    spread_ms: float
    """Per announcement, the latest daemon's first audio minus the earliest's; median."""
    spread_max_ms: float
    first_audio_ms: float
    """The daemons' own request-to-first-sample, median (the rest is the broker's)."""
    cpu_us_per_message: float
    """A daemon's CPU per message it parses and drops, median over the fleet."""
    rss_mb: float
    """A daemon's resident memory, median."""
    events_lost: int = 0
    """`started` events (QoS 0) that did not reach the benchmark; those daemons are left
    out of that announcement's figures."""


class Fleet:
    def __init__(self, pulse: PulseServer, tone: ToneServer, broker: Broker, base: Path) -> None:
        self._env = clean_env(pulse.env)
        self._tone = tone
        self._broker = broker
        self._base = base
        self.daemons: dict[str, Daemon] = {}

    async def start(self, n: int) -> None:
        names = [f"kiosk{i:03d}" for i in range(len(self.daemons), n)]
        for first in range(0, len(names), BATCH):
            await asyncio.gather(*(self._start(name) for name in names[first : first + BATCH]))

    async def _start(self, name: str) -> None:
        folder = self._base / name
        folder.mkdir()
        mqtt: dict[str, object] = {
            "broker": self._broker.address,
            "client_id": name,
            "groups": ["bench"],
        }
        config = write_config(folder, self._tone.address, api_key=KEY, mqtt=mqtt)
        daemon = Daemon(config, self._env)
        self.daemons[name] = daemon
        await daemon.start()

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop() for d in self.daemons.values()), return_exceptions=True)

    def pid(self, name: str) -> int:
        proc = self.daemons[name].proc
        assert proc is not None
        return proc.pid


def started_times(watch: Watch, name: str) -> list[dict[str, object]]:
    return [e for e in watch.events(name) if e["event"] == "started"]


async def every(watch: Watch, names: list[str], kind: str, before: dict[str, int]) -> list[str]:
    """Waits (TIMEOUT at most) for a new `kind` event from every daemon; those that sent
    none. Events are QoS 0: a broker may drop one for a subscriber that falls behind."""
    with contextlib.suppress(TimeoutError):
        await watch.holds(lambda: all(watch.count(n, kind) > before[n] for n in names), TIMEOUT)
    return [n for n in names if watch.count(n, kind) <= before[n]]


async def announce(watch: Watch, names: list[str], ident: str) -> Heard:
    """Publishes one announcement to `all` and times it on each daemon."""
    started = {n: watch.count(n, "started") for n in names}
    finished = {n: watch.count(n, "finished") for n in names}
    sent = time.time()
    await watch.publish(f"{PREFIX}/all/say", {"text": TEXT, "id": ident})
    missing = await every(watch, names, "started", started)
    if len(missing) == len(names):
        raise RuntimeError(f"{ident}: no first audio within {TIMEOUT} s on any daemon")
    heard = Heard([], [], len(missing))
    for n in names:
        if n not in missing:
            event = started_times(watch, n)[started[n]]
            heard.latencies.append((float(str(event["time"])) - sent) * 1000)
            heard.own.append(float(str(event["first_audio_ms"])))
    # Idle again before the next one.
    await every(watch, names, "finished", finished)
    return heard


@dataclass
class Heard:
    latencies: list[float]
    """Per daemon, publish to first audio, milliseconds."""
    own: list[float]
    """Per daemon, its own request-to-first-sample, milliseconds."""
    lost: int
    """Daemons whose `started` event did not reach the benchmark."""


async def cpu_per_message(
    fleet: Fleet, watch: Watch, names: list[str], drops: int, seen: str
) -> list[float]:
    """Per daemon, CPU microseconds per message it parses and drops (`seen` was spoken)."""
    pids = [fleet.pid(n) for n in names]
    before = [system.cpu_seconds(p) for p in pids]
    await asyncio.sleep(IDLE_S)
    idle = [(system.cpu_seconds(p) - b) / IDLE_S for p, b in zip(pids, before, strict=True)]
    before = [system.cpu_seconds(p) for p in pids]
    began = time.monotonic()
    for _ in range(drops):
        await watch.publish(f"{PREFIX}/all/say", {"text": TEXT, "id": seen})
    # An expired message after the burst: each daemon logs dropping it, so it has taken
    # everything before it.
    marker = f"marker-{time.time_ns()}"
    await watch.publish(f"{PREFIX}/all/say", {"text": TEXT, "id": marker, "expires": 0})
    async with asyncio.timeout(TIMEOUT):
        # The logs are files: nothing to be woken by, so they are looked at 10 times a second.
        while not all(marker in fleet.daemons[n].log for n in names):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    took = time.monotonic() - began
    return [
        max(0.0, (system.cpu_seconds(p) - b) - rate * took) / (drops + 1) * 1e6
        for p, b, rate in zip(pids, before, idle, strict=True)
    ]


async def measure(fleet: Fleet, broker: Broker, n: int, announcements: int, drops: int) -> Row:
    await fleet.start(n)
    names = sorted(fleet.daemons)
    topics = [f"{PREFIX}/+/events", f"{PREFIX}/+/availability"]
    async with Watch(broker.address, topics) as watch:
        for name in names:
            await watch.until(payload_is(f"{PREFIX}/{name}/availability", "online"), TIMEOUT)
        latencies: list[float] = []
        spreads: list[float] = []
        own: list[float] = []
        ident = ""
        lost = 0
        for k in range(announcements):
            ident = f"n{n}-a{k}"
            heard = await announce(watch, names, ident)
            times = heard.latencies
            latencies += times
            own += heard.own
            lost += heard.lost
            spreads.append(max(times) - min(times))
            print(f"  {n} daemons, announcement {k + 1}: median {statistics.median(times):.0f} ms, "
                  f"spread {spreads[-1]:.0f} ms", file=sys.stderr)  # fmt: skip
        cpu = await cpu_per_message(fleet, watch, names, drops, ident)
    return Row(
        daemons=n,
        announcements=announcements,
        median_ms=round(statistics.median(latencies), 1),
        max_ms=round(max(latencies), 1),
        spread_ms=round(statistics.median(spreads), 1),
        spread_max_ms=round(max(spreads), 1),
        first_audio_ms=round(statistics.median(own), 1),
        cpu_us_per_message=round(statistics.median(cpu), 1),
        events_lost=lost,
        rss_mb=round(statistics.median(system.rss_mb(fleet.pid(name)) for name in names), 1),
    )


def print_table(rows: list[Row]) -> None:
    """Milliseconds from publishing to `all` to each daemon's first audio; the daemon's own
    share (request to first sample); CPU per broker message; memory."""
    columns = (
        ("daemons", 7),
        ("median ms", 9),
        ("max ms", 7),
        ("spread ms", 9),
        ("spread max", 10),
        ("own first audio ms", 18),
        ("CPU µs/message", 14),
        ("RSS MB", 6),
        ("events lost", 11),
    )
    print("  ".join(f"{name:>{width}}" for name, width in columns))
    for r in rows:
        values = (
            r.daemons,
            r.median_ms,
            r.max_ms,
            r.spread_ms,
            r.spread_max_ms,
            r.first_audio_ms,
            r.cpu_us_per_message,
            r.rss_mb,
            r.events_lost,
        )
        print("  ".join(f"{v:>{w}.0f}" for v, (_, w) in zip(values, columns, strict=True)))


async def run(counts: list[int], announcements: int, drops: int, out: Path | None) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, PulseServer() as pulse, Broker() as broker:
        tone = ToneServer(ToneScript(api_key=KEY))
        await tone.start()
        fleet = Fleet(pulse, tone, broker, Path(tmp))
        try:
            for n in sorted(counts):
                rows.append(await measure(fleet, broker, n, announcements, drops))
        except RuntimeError:
            for name, daemon in fleet.daemons.items():
                lines = [line for line in daemon.log.splitlines() if "ALSA" not in line]
                print(f"--- {name}:\n" + "\n".join(lines[-8:]), file=sys.stderr)
            print(f"--- broker:\n{broker.log[-3000:]}", file=sys.stderr)
            raise
        finally:
            await fleet.stop()
            await tone.stop()
    print_table(rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report = {"text": TEXT, "drops": drops, "rows": [asdict(r) for r in rows]}
        (out / "fleet.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {out / 'fleet.json'}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/fleet", description=__doc__)
    parser.add_argument("--daemons", default="10,50", help="fleet sizes, comma-separated")
    parser.add_argument("--announcements", type=int, default=5, help="to `all`, per size")
    parser.add_argument("--drops", type=int, default=500, help="messages for the CPU figure")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for fleet.json")
    args = parser.parse_args()
    counts = [int(n) for n in args.daemons.split(",") if n.strip()]
    asyncio.run(run(counts, args.announcements, args.drops, args.out))


if __name__ == "__main__":
    main()
