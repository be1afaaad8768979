"""The faults the soak (`bench/soak`) injects, one every `--fault-every` seconds, in the
order of `FAULTS`: streams aborted with each transient code, a hung call, a stall, the
sound server killed and restarted or frozen, a local synthesizer killed, SIGHUP, a
burst of clients and a 100 kB message on `say -`'s standard input."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from bench.soak_rig import Target

if TYPE_CHECKING:
    # What a fault acts on: the soak's rig (its daemons, sound server and tone server)
    # and its `say`, `spawn` and `settle`.
    from bench.soak import Soak as Lab

BYTES_PER_S = 48000 * 2
"""Of the tone server's audio to the daemons (48 kHz mono LINEAR16)."""
CUT_AFTER_BYTES = BYTES_PER_S
"""Where a scripted call breaks off or stalls: 1 s into its audio, mid-utterance (every
soak text is longer)."""
STALL_S = 0.3
AWAY_S = 3.0
"""Seconds the killed sound server stays away before it is started again."""
FROZEN_S = 1.5
"""Seconds the sound server stays stopped (SIGSTOP) before SIGCONT."""
RELOAD_TIMEOUT = 30.0
"""Seconds a daemon may take to log how a SIGHUP reload went."""
BIG_BYTES = 100_000
"""Size of the message `say -` reads from standard input."""
BIG_MS_PER_CHAR = 0.1
"""The tone server's pace while it speaks the big message: 100 kB at the usual 40 ms a
character would be 67 minutes of tone; at this pace it is 10 s, so it is heard to its end
and judged like every other utterance."""


@dataclass
class Injected:
    """What a fault did, as it reports it."""

    targets: list[str]
    detail: str
    call: int | None = None
    """The tone server's call the fault was scripted for (its index in `calls`)."""
    struck: float | None = None
    """time.monotonic() it struck, if later than it was injected (it waited its turn)."""


@dataclass
class FaultRecord:
    name: str
    at_s: float
    """Seconds since the soak began."""
    took_s: float
    """Seconds the injection itself took (the sound server away, a reload, a message)."""
    targets: list[str]
    detail: str
    call: int | None = None
    call_status: str | None = None
    """How the scripted call ended, at the tone server."""
    in_flight: list[str] = field(default_factory=list)
    """`n: daemon via outcome` of each utterance running when it struck."""
    recovered_s: float | None = None
    """From the fault to the end of the first utterance asked after it (on each daemon
    it hit, the slowest) that was heard in full; None if none was."""


Fault = Callable[["Lab", int], Awaitable[Injected]]


def scripted(**changes: object) -> Fault:
    """The tone server's next call acts on `changes` to its script."""

    async def inject(lab: Lab, _round: int) -> Injected:
        call = len(lab.tone.calls)
        lab.tone.next_scripts.append(dataclasses.replace(lab.script, **changes))  # type: ignore[arg-type]
        detail = ", ".join(f"{k}={getattr(v, 'name', v)}" for k, v in changes.items())
        return Injected(["tone"], detail, call)

    return inject


async def sound_server_killed(lab: Lab, _round: int) -> Injected:
    await asyncio.to_thread(lab.pulse.kill)
    await asyncio.sleep(AWAY_S)
    await asyncio.to_thread(lab.pulse.restart)
    return Injected(list(lab.targets), f"SIGKILL, started again after {AWAY_S:g} s")


async def sound_server_frozen(lab: Lab, _round: int) -> Injected:
    lab.pulse.freeze()
    try:
        await asyncio.sleep(FROZEN_S)
    finally:
        lab.pulse.thaw()
    return Injected(list(lab.targets), f"SIGSTOP, SIGCONT after {FROZEN_S:g} s")


def _in_turn(lab: Lab, round_: int) -> Target:
    """The local daemon, then the tone daemon, round after round."""
    return lab.targets[("local", "tone")[round_ % 2]]


async def local_child_killed(lab: Lab, round_: int) -> Injected:
    target = _in_turn(lab, round_)
    pid = target.child()
    if pid is None:
        return Injected([target.name], "no serve-local child was running")
    os.kill(pid, signal.SIGKILL)
    return Injected([target.name], f"SIGKILL to serve-local pid {pid}")


async def sighup(lab: Lab, round_: int) -> Injected:
    target = _in_turn(lab, round_)
    daemon = target.daemon
    seen = daemon.log.count("config reloaded")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    try:
        async with asyncio.timeout(RELOAD_TIMEOUT):
            # The log is a file: nothing to be woken by.
            while daemon.log.count("config reloaded") == seen:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        return Injected([target.name], f"no 'config reloaded' within {RELOAD_TIMEOUT:g} s")
    return Injected([target.name], "config reloaded")


async def burst(lab: Lab, round_: int) -> Injected:
    """`burst_size` clients at once, each saying one short text through its own
    connection. They reach the daemon's queue in whatever order their connections land,
    not the order they were sent in, so each may wait for all the others."""
    target = lab.targets["tone"]
    texts = [f"Burst {round_}, caller {i}, checking in." for i in range(lab.burst_size)]
    calls = [
        lab.say(target, t, "burst", racing=tuple(o for o in texts if o is not t)) for t in texts
    ]
    lab.spawn(asyncio.gather(*calls))
    return Injected([target.name], f"{lab.burst_size} clients at once")


def big_message() -> str:
    """At least BIG_BYTES of plain sentences."""
    lines, size, n = [], 0, 0
    while size < BIG_BYTES:
        line = f"This is line {n} of a long message piped into say on its standard input. "
        lines.append(line)
        size, n = size + len(line), n + 1
    return "".join(lines).strip()


async def stdin_message(lab: Lab, _round: int) -> Injected:
    """A 100 kB message to `say --wait -`, spoken at BIG_MS_PER_CHAR. The tone server's
    pace is changed for every call while it speaks, so the tone daemon is taken for it
    alone: its client and any burst wait."""
    target = lab.targets["tone"]
    await lab.settle()
    text = big_message()
    async with target.gate:
        struck = time.monotonic()
        lab.tone.script = dataclasses.replace(lab.script, ms_per_char=BIG_MS_PER_CHAR)
        try:
            said = await lab.say(target, text, "cli-stdin-100kb", ms_per_char=BIG_MS_PER_CHAR)
        finally:
            lab.tone.script = lab.script
    detail = f"{len(text.encode())} bytes, utterance {said.n}"
    return Injected([target.name], detail, struck=struck)


def abort(code: grpc.StatusCode) -> Fault:
    return scripted(abort_after_bytes=CUT_AFTER_BYTES, abort_code=code)


FAULTS: dict[str, Fault] = {
    "abort-unavailable": abort(grpc.StatusCode.UNAVAILABLE),
    "abort-internal": abort(grpc.StatusCode.INTERNAL),
    "abort-resource-exhausted": abort(grpc.StatusCode.RESOURCE_EXHAUSTED),
    "abort-deadline-exceeded": abort(grpc.StatusCode.DEADLINE_EXCEEDED),
    "hung-call": scripted(never_answer=True),
    "stall-300ms": scripted(stall_after_bytes=CUT_AFTER_BYTES, stall_s=STALL_S),
    "sound-server-killed": sound_server_killed,
    "sound-server-frozen": sound_server_frozen,
    "local-child-killed": local_child_killed,
    "sighup": sighup,
    "burst": burst,
    "stdin-100kb": stdin_message,
}
"""In the order they are injected, round after round."""


async def inject(lab: Lab, name: str, round_: int, began: float) -> FaultRecord:
    at = time.monotonic()
    injected = await FAULTS[name](lab, round_)
    at = injected.struck or at
    return FaultRecord(
        name=name,
        at_s=round(at - began, 3),
        took_s=round(time.monotonic() - at, 3),
        targets=injected.targets,
        detail=injected.detail,
        call=injected.call,
    )
