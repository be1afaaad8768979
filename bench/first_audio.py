"""Time from `say` to the first audio heard, with the daemon's local Piper synthesizer.

Starts a private PulseAudio null sink, records its monitor, runs the real daemon with
`endpoint = "local"`, and says the same sentence again and again, through the control
API and through the CLI. "Heard" is when the first sample above -40 dBFS reached the
recorder: an upper bound that includes the sink's and parec's few ms of latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from player.client import Client  # noqa: E402
from tests.daemon import Daemon, clean_env, run_cli, write_config  # noqa: E402
from tests.pulse import PulseServer, Recorder  # noqa: E402

TEXT = "Attention, please. The museum closes in fifteen minutes."
THRESHOLD = 0.01  # -40 dBFS
TIMEOUT = 60.0


def first_sound(recorder: Recorder, since: float) -> float:
    """Monotonic time the first loud sample recorded after `since` arrived."""
    start = recorder.index_at(since)

    def loud(x: np.ndarray) -> bool:
        return bool(np.any(np.abs(x[start:]) >= THRESHOLD * 32768))

    x = recorder.wait_until(loud, TIMEOUT)
    index = start + int(np.flatnonzero(np.abs(x[start:]) >= THRESHOLD * 32768)[0])
    return recorder.arrival_time(index)


async def one(text: str) -> AsyncIterator[str]:
    yield text


async def measure(daemon: Daemon, recorder: Recorder, via: str) -> float:
    started = time.monotonic()
    if via == "api":
        async with Client(daemon.socket) as client:
            waiting = asyncio.create_task(client.say(one(TEXT), True))
            heard = await asyncio.to_thread(first_sound, recorder, started)
            await asyncio.wait_for(waiting, TIMEOUT)
    else:
        cli = asyncio.create_task(run_cli(daemon.config, daemon.env, "say", "--wait", TEXT))
        heard = await asyncio.to_thread(first_sound, recorder, started)
        result = await asyncio.wait_for(cli, TIMEOUT)
        if result.returncode:
            raise RuntimeError(result.stderr)
    return heard - started


def row(name: str, values: list[float]) -> dict[str, object]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "measure": name,
        "runs": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
    }


async def run(runs: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder, PulseServer() as pulse, Recorder(pulse) as rec:
        config = write_config(Path(folder), "local", api_key=None)
        daemon = Daemon(config, clean_env(pulse.env))
        await daemon.start()
        try:
            cold = await measure(daemon, rec, "api")  # includes loading the voice
            rows = [row("say -> first audio, cold start (voice loading)", [cold])]
            for via, name in (("api", "control API"), ("cli", "CLI `say`")):
                values = [await measure(daemon, rec, via) for _ in range(runs)]
                rows.append(row(f"say -> first audio, {name}", values))
        finally:
            await daemon.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="repetitions per measure")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args()
    rows = asyncio.run(run(args.runs))
    print(f"Local engine (Piper en_US-joe-medium), text: {TEXT!r}")
    print(f"{'measure':52} {'runs':>4} {'median ms':>10} {'p95 ms':>8}")
    for r in rows:
        print(f"{r['measure']:52} {r['runs']:>4} {r['median_ms']:>10} {r['p95_ms']:>8}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
