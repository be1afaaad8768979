"""The cheapest output stream Python can run here: the daemon's device, rate, channels,
block and latency, and a callback that only copies one block of samples and times itself.

Run as a subprocess (`python -m bench.floor SECONDS`) in the sound server's environment; it
prints one JSON line: CPU % of a core, and the callback's median and p99 run time in us.
What this costs, no daemon can cost less on this machine, so the bench prints it beside
the daemon's own figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np
import sounddevice

RATE, CHANNELS, BLOCK = 48000, 2, 480


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    source = np.full(BLOCK, 0.01, dtype=np.float32)
    runs = np.zeros(100_000, dtype=np.int64)
    calls = [0]

    def callback(outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        started = time.perf_counter_ns()
        outdata[:] = source[:frames, np.newaxis]
        runs[calls[0] % len(runs)] = time.perf_counter_ns() - started
        calls[0] += 1

    with sounddevice.OutputStream(
        device="pulse",
        samplerate=RATE,
        channels=CHANNELS,
        dtype="float32",
        blocksize=BLOCK,
        latency="low",
        callback=callback,
    ):
        time.sleep(0.5)  # past the stream's start-up
        first, cpu = calls[0], cpu_seconds()
        began = time.monotonic()
        time.sleep(seconds)
        cpu_pct = 100 * (cpu_seconds() - cpu) / (time.monotonic() - began)
        timed = runs[first : min(calls[0], len(runs))] / 1000
    p50, p99 = np.percentile(timed, [50, 99])
    print(json.dumps({"cpu_pct": round(cpu_pct, 2), "median_us": p50, "p99_us": p99}))


if __name__ == "__main__":
    main()
