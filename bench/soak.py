"""A soak that injects faults (issue 20): two daemons on one private PulseAudio, one
speaking through the tone server (falling back to its local voice), one through the local
Piper voice, each saying utterances back to back (the control API and the CLI in turn),
while a fault strikes every --fault-every seconds (see bench/soak_faults.py). Every
utterance is judged heard in full, failed with a reason, or lost; the daemons' memory,
file descriptors and threads are sampled every --sample-every seconds. Writes soak.json
and soak.png; exits 1 if an utterance was lost or a resource grew.

    bench/soak [--minutes 60] [--fault-every 60] [--out bench/results] [--faults a,b,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import system, timeline
from bench.soak_faults import FAULTS, FaultRecord, inject
from bench.soak_judge import (
    by_way,
    judge,
    judge_fault,
    lost_details,
    print_summary,
    synthesized,
    trends,
)
from bench.soak_rig import VIAS, EventLog, Said, Target, speak
from tests.harness.daemon import Daemon, clean_env, write_config
from tests.harness.pulse import PulseServer
from tests.harness.tone_server import ToneScript, ToneServer

KEY = "bench-key"
SCRIPT = ToneScript(api_key=KEY, first_chunk_delay=0.1, realtime_factor=1.5, jitter=0.02)
"""A server a little faster than real time, as the cloud is: the ring holds only a
little ahead, so a stall or a break is felt."""
SPEECHKIT = {"fallback": "local", "first_audio_timeout_s": 3.0}
"""The tone daemon's: a hung call falls back to the local voice after 3 s (10 s by
default; shorter keeps the soak speaking). retry_s and device_wait_s keep their defaults."""
TEXTS = (
    "The next guided tour of the east wing starts in five minutes at the main desk.",
    "Please keep your bags with you at all times.",
    "The cafe on the second floor closes at half past five today.",
    "Lost children can be collected at the information point near the north entrance.",
    "Photography without flash is allowed in every room except the print gallery.",
    "Thank you for visiting, and have a safe journey home.",
)
HUNG_AFTER_S = 60.0
"""Seconds past its own length (and what is queued ahead of it) after which an
utterance that neither finished nor failed counts as lost: more than the daemon's own
bounds add up to (device_wait_s 30, retry_s 10, first_audio_timeout_s 3, a local
synthesizer restarting in a few seconds)."""
SPEECH_S_PER_CHAR = 0.1
"""Seconds of speech a character may take at the most: the tone's 40 ms, Piper's about
70 ms, with room for synthesis."""
PER_UTTERANCE_S = 1.0
"""Seconds an utterance may take besides its speech: a call, the jitter buffer, a CLI."""
WARM_UP_S = 120.0
"""Seconds the first utterance of each daemon may take: it loads the Piper voice."""
FAILED_PAUSE_S = 0.5
"""Seconds a client waits after an utterance failed, so a daemon that refuses every
request does not fill the report with thousands of them."""
ROLES = ("tone daemon", "tone child", "local daemon", "local child")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    minutes: float
    """Minutes the clients keep speaking; the soak then waits for what is in flight."""
    fault_every_s: float
    sample_every_s: float
    faults: tuple[str, ...]
    burst_size: int


@dataclass
class Ended:
    """How a daemon ended: it must still be running at the end, exit 0 on SIGTERM and
    have logged no traceback."""

    alive_at_end: bool
    exit_code: int
    tracebacks: int
    event_stream_breaks: int
    """Times the soak's event stream from it broke and was opened again."""


class Soak:
    """The rig and the run: daemons, clients, faults, samples. The faults act on it
    (`bench.soak_faults`)."""

    def __init__(self, pulse: PulseServer, tone: ToneServer, base: Path, options: Options) -> None:
        self.pulse = pulse
        self.tone = tone
        self.script = SCRIPT
        self.burst_size = options.burst_size
        self.options = options
        self.targets: dict[str, Target] = {}
        self._owed: defaultdict[str, float] = defaultdict(float)
        """Per daemon, seconds of speech asked for and not yet ended (a burst queues)."""
        self.said: list[Said] = []
        self.faults: list[FaultRecord] = []
        self.samples: list[dict[str, object]] = []
        self._base = base
        self._env = clean_env(pulse.env)
        self._background: list[asyncio.Future[object]] = []
        self._watchers: list[asyncio.Task[None]] = []
        self.began = time.monotonic()

    async def start(self) -> None:
        """Both daemons, each listened to, each warmed up (voices loaded, the fallback
        taken once), uncounted."""
        tone = write_config(
            self._folder("tone"), self.tone.address, api_key=KEY, speechkit=SPEECHKIT
        )
        local = write_config(self._folder("local"), "local", api_key=None)
        for name, config in (("tone", tone), ("local", local)):
            daemon = Daemon(config, self._env)
            await daemon.start()
            self.targets[name] = Target(name, daemon, EventLog(daemon))
            self._watchers.append(asyncio.create_task(self.targets[name].events.run()))
        self.tone.next_scripts.append(replace(SCRIPT, never_answer=True))  # the fallback
        warm = [self._warm(t) for t in self.targets.values()]
        await asyncio.gather(*warm)
        self.began = time.monotonic()

    def _folder(self, name: str) -> Path:
        folder = self._base / name
        folder.mkdir()
        return folder

    async def _warm(self, target: Target) -> None:
        said = Said(0, target.name, "api", 0, None, 0.0, WARM_UP_S)  # uncounted
        # The longest text: onnxruntime's arenas grow to the largest input they have seen
        # and stay, which would otherwise read as the local synthesizer's memory growing.
        await speak(target, said, max(TEXTS, key=len), self.began)
        if said.hung or said.error:
            raise RuntimeError(f"{target.name} did not speak: {said.error}\n{target.daemon.log}")

    async def stop(self) -> dict[str, Ended]:
        """Stops the listeners and the daemons; how each daemon ended."""
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self.pulse.thaw()  # a daemon on a frozen server cannot stop
        ended: dict[str, Ended] = {}
        for name, target in self.targets.items():
            alive = target.daemon.alive
            code = await target.daemon.stop()
            tracebacks = target.daemon.log.count("Traceback")
            ended[name] = Ended(alive, code, tracebacks, target.events.breaks)
        return ended

    # --- for the faults ---------------------------------------------------------------------

    async def say(
        self,
        target: Target,
        text: str,
        via: str,
        *,
        ms_per_char: float | None = None,
        racing: tuple[str, ...] = (),
    ) -> Said:
        """Says `text` and records it; `ms_per_char`: the tone server's pace if not the
        usual. It may take as long as what is queued ahead of it, its own length, and
        HUNG_AFTER_S. `racing`: texts sent at the same moment, which the daemon may queue
        ahead of this one whatever the order they were sent in."""
        if ms_per_char is None and target.name == "tone":
            ms_per_char = self.script.ms_per_char
        # The tone's own length where known; a fallback to the local voice fits in the slack.
        per_char = SPEECH_S_PER_CHAR if ms_per_char is None else ms_per_char / 1000
        owed = len(text) * per_char + PER_UTTERANCE_S
        rivals = sum(len(other) * per_char + PER_UTTERANCE_S for other in racing)
        bound = HUNG_AFTER_S + self._owed[target.name] + owed + rivals
        said = Said(
            len(self.said) + 1, target.name, via, len(text), ms_per_char, self._now(), bound
        )
        self.said.append(said)
        self._owed[target.name] += owed
        try:
            return await speak(target, said, text, self.began)
        finally:
            self._owed[target.name] -= owed

    def spawn(self, work: Awaitable[object]) -> None:
        """Runs `work` in the background; the soak waits for it before it ends."""
        self._background.append(asyncio.ensure_future(work))

    async def settle(self) -> None:
        """Waits for what `spawn` started."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
            self._background = [f for f in self._background if not f.done()]

    # --- the run ---------------------------------------------------------------------------

    def _now(self) -> float:
        return round(time.monotonic() - self.began, 3)

    async def run(self) -> None:
        deadline = self.began + self.options.minutes * 60
        self.sample()
        sampling = asyncio.create_task(self._sample_until(deadline))
        clients = [
            asyncio.create_task(self._client(target, deadline, k))
            for k, target in enumerate(self.targets.values())
        ]
        try:
            await self._inject_until(deadline)
            await asyncio.gather(*clients)
            await self.settle()
        finally:
            sampling.cancel()
            for client in clients:
                client.cancel()
            for work in self._background:
                work.cancel()
            await asyncio.gather(sampling, *clients, *self._background, return_exceptions=True)
        self.sample()

    async def _client(self, target: Target, deadline: float, offset: int) -> None:
        """Utterances back to back until the deadline, each text and way in turn."""
        k = 0
        while time.monotonic() < deadline and target.daemon.alive:
            text = TEXTS[(k + offset) % len(TEXTS)]
            async with target.gate:
                said = await self.say(target, text, VIAS[k % len(VIAS)])
            if said.error is not None or said.crashed is not None:
                await asyncio.sleep(FAILED_PAUSE_S)
            k += 1

    async def _inject_until(self, deadline: float) -> None:
        names, every = self.options.faults, self.options.fault_every_s
        k = 0
        while True:
            due = self.began + (k + 1) * every
            if due >= deadline:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() >= deadline:  # the one before ran late
                return
            name = names[k % len(names)]
            fault = await inject(self, name, k // len(names), self.began)
            self.faults.append(fault)
            print(f"  {fault.at_s / 60:5.1f} min  {name}: {fault.detail}", file=sys.stderr)
            k += 1

    async def _sample_until(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(self.options.sample_every_s)
            self.sample()

    def sample(self) -> None:
        """RSS, fds and threads of each daemon and its local synthesizer, now."""
        procs: dict[str, dict[str, float]] = {}
        for name, target in self.targets.items():
            for role, pid in ((f"{name} daemon", target.pid), (f"{name} child", target.child())):
                if pid is None:
                    continue
                with contextlib.suppress(OSError):  # it ended while we looked
                    procs[role] = {
                        "pid": pid,
                        "rss_mb": round(system.rss_mb(pid), 1),
                        "fds": system.fds(pid),
                        "threads": system.threads(pid),
                    }
        self.samples.append({"t_s": self._now(), "procs": procs})

    # --- the verdicts --------------------------------------------------------------------

    def report(self, ended: dict[str, Ended]) -> dict[str, object]:
        done = {name: synthesized(t.daemon.log) for name, t in self.targets.items()}
        for said in self.said:
            judge(said, self.targets[said.daemon], done[said.daemon])
        for fault in self.faults:
            judge_fault(fault, self.said, self.tone)
        lost = [lost_details(s, self.targets[s.daemon]) for s in self.said if s.outcome == "lost"]
        resources = trends(self.samples, list(ROLES))
        grew = [
            f"{role} {metric}"
            for role, metrics in resources.items()
            for metric, t in metrics.items()
            if t["flat"] is False
        ]
        daemons_ok = all(
            e.alive_at_end and e.exit_code == 0 and not e.tracebacks for e in ended.values()
        )
        counts = Counter(s.outcome for s in self.said)
        return {
            "settings": {
                **asdict(self.options),
                "tone_script": {
                    "first_chunk_delay_s": SCRIPT.first_chunk_delay,
                    "realtime": SCRIPT.realtime_factor,
                    "jitter_s": SCRIPT.jitter,
                    "ms_per_char": SCRIPT.ms_per_char,
                },
                "tone_daemon_speechkit": SPEECHKIT,
                "hung_after_s": HUNG_AFTER_S,
            },
            "counts": {
                "said": len(self.said),
                **{k: counts.get(k, 0) for k in ("finished", "failed", "lost")},
                "fallbacks": sum(s.fallback for s in self.said),
                "unchecked": sum(s.why.startswith("unchecked") for s in self.said),
                "by_way": by_way(self.said),
            },
            "lost": lost,
            "failed": [
                {"n": s.n, "daemon": s.daemon, "via": s.via, "sent_s": s.sent_s, "error": s.error}
                for s in self.said
                if s.outcome == "failed"
            ],
            "faults": [asdict(f) for f in self.faults],
            "resources": resources,
            "samples": self.samples,
            "daemons": {name: asdict(e) for name, e in ended.items()},
            "verdicts": {
                "lost": len(lost),
                "resources_grew": grew,
                "daemons_ended_cleanly": daemons_ok,
                "passed": not lost and not grew and daemons_ok,
            },
            "utterances": [asdict(s) for s in self.said],
        }

    def draw(self, path: Path) -> None:
        series: dict[str, list[tuple[float, dict[str, float]]]] = {}
        for sample in self.samples:
            procs = sample["procs"]
            assert isinstance(procs, dict)
            for role, values in procs.items():
                series.setdefault(role, []).append((float(str(sample["t_s"])) / 60, values))
        faults = [(f.at_s / 60, f.name) for f in self.faults]
        options = self.options
        title = f"bench/soak: {options.minutes:g} min, a fault every {options.fault_every_s:g} s"
        timeline.resources(path, series, faults, title)


async def run(options: Options, out: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp, PulseServer() as pulse:
        tone = ToneServer(SCRIPT)
        await tone.start()
        soak = Soak(pulse, tone, Path(tmp), options)
        try:
            await soak.start()
            print(f"  soaking for {options.minutes:g} min", file=sys.stderr)
            await soak.run()
        finally:
            pulse.thaw()
            ended = await soak.stop()
            await tone.stop()
        report = soak.report(ended)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    soak.draw(out / "soak.png")
    print_summary(report)
    print(f"\nwrote {out / 'soak.json'} and {out / 'soak.png'}")
    verdicts = report["verdicts"]
    assert isinstance(verdicts, dict)
    return bool(verdicts["passed"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0, help="how long the clients speak")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--faults", default=",".join(FAULTS), help="which, in this order")
    parser.add_argument("--burst", type=int, default=50, help="clients in the burst fault")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for soak.json/.png")
    args = parser.parse_args()
    names = tuple(n.strip() for n in args.faults.split(",") if n.strip())
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    options = Options(args.minutes, args.fault_every, args.sample_every, names, args.burst)
    passed = asyncio.run(run(options, args.out))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
