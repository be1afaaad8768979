"""What the soak (`bench/soak`) runs against and how it speaks: the daemons under test,
their event streams, and one utterance said through the control API or the CLI with
what came of it written down (judged later, in `bench.soak_judge`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from bench import system
from player.control.client import Client
from player.control.views import event_dict
from player.errors import ClientError
from tests.harness.daemon import Daemon, spawn_cli

VIAS = ("api", "api-stream", "cli", "cli-stdin")
"""How a client task says its utterances, in turn: `Client.say(text, wait=True)`, the
text streamed through `Client.speech(wait=True)`, `say --wait TEXT`, `say --wait -`
(the text on standard input). A fault's own utterances name themselves after these
("cli-stdin-100kb"); any other name is `Client.say`."""
RESUBSCRIBE_S = 1.0
"""Seconds between attempts to listen to a daemon's events again after the stream broke."""


@dataclass
class Said:
    """One utterance: how it was said and what the caller got back. `outcome` and the
    fields after it are filled in by `bench.soak_judge.judge` once the soak is over."""

    n: int
    daemon: str
    via: str
    chars: int
    ms_per_char: float | None
    """The tone server's for this text; None when the local voice speaks it."""
    sent_s: float
    """Seconds since the soak began."""
    bound_s: float
    """Seconds it may take to end (finish or fail) before it counts as hung."""
    ended_s: float | None = None
    id: str | None = None
    played_ms: int | None = None
    """What the daemon says it played: its reply, or failing that its `finished` event."""
    error: str | None = None
    """The reason it failed, as the caller was told."""
    hung: bool = False
    crashed: str | None = None
    """A CLI that ended without a one-line reason: its exit code and last lines."""
    log_span: tuple[int, int] = (0, 0)
    """Byte offsets of the daemon's log when it was sent and when it ended."""
    outcome: str = ""
    """finished (heard in full), failed (with a reason) or lost."""
    expected_ms: int | None = None
    why: str = ""
    """For a lost one, what was wrong; for a finished one, what it was checked against."""
    fallback: bool = False


class EventLog:
    """Every event of one daemon, by utterance id, for as long as `run` runs; it listens
    again if the stream breaks (a reload, a busy moment)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.by_id: dict[str, list[dict[str, object]]] = {}
        self.queued: list[tuple[float, str]] = []
        """(time.monotonic() it arrived, utterance id) of each `queued` event."""
        self.breaks = 0

    async def run(self) -> None:
        while True:
            try:
                async with Client(self._daemon.socket) as client:
                    stream = await client.subscribe()
                    async for event in stream:
                        self._add(event_dict(event))
            except ClientError:
                pass
            self.breaks += 1
            await asyncio.sleep(RESUBSCRIBE_S)

    def _add(self, event: dict[str, object]) -> None:
        ident = str(event["id"])
        if event["event"] == "text":
            return  # many, and nothing the soak judges by
        if event["event"] == "queued":
            self.queued.append((time.monotonic(), ident))
        self.by_id.setdefault(ident, []).append(event)

    def end(self, ident: str) -> dict[str, object] | None:
        """The event that ended `ident` (finished, error, cancelled), if one came."""
        ends = [
            e for e in self.by_id.get(ident, []) if e["event"] in ("finished", "error", "cancelled")
        ]
        return ends[-1] if ends else None

    def queued_between(self, since: float, until: float) -> list[str]:
        return [ident for at, ident in self.queued if since <= at <= until]


@dataclass
class Target:
    """One daemon under test."""

    name: str
    daemon: Daemon
    events: EventLog
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by its client task for each utterance; a fault that needs the daemon to
    itself takes it."""

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    def child(self) -> int | None:
        """Its `serve-local` child (the local Piper synthesizer), if one runs."""
        with contextlib.suppress(OSError):
            for pid in system.children(self.pid):
                with contextlib.suppress(OSError):
                    if "serve-local" in system.cmdline(pid):
                        return pid
        return None

    def log_size(self) -> int:
        with contextlib.suppress(OSError):
            return self.daemon.log_path.stat().st_size
        return 0

    def log_between(self, start: int, end: int) -> str:
        with self.daemon.log_path.open("rb") as log:
            log.seek(start)
            return log.read(max(0, end - start)).decode(errors="replace")


async def speak(target: Target, said: Said, text: str, began: float) -> Said:
    """Says `text` through `target` the way `said.via` says; records the reply, the
    reason it failed, or that it did not end within `said.bound_s`."""
    said.log_span = (target.log_size(), 0)
    started = time.monotonic()
    try:
        async with asyncio.timeout(said.bound_s):
            if said.via.startswith("cli"):
                await _cli(target, said, text, said.via.startswith("cli-stdin"))
            else:
                await _api(target, said, text, said.via == "api-stream")
    except TimeoutError:
        said.hung = True
        if said.id is None:
            # Whose `queued` it was: the client did not live to hear its id.
            unclaimed = target.events.queued_between(started, time.monotonic())
            said.id = ",".join(unclaimed) or None
    except ClientError as err:
        said.error = str(err)
    except Exception as err:
        # An odd answer (the CLI's output not as documented, a broken reply) must not end
        # the soak: it is judged like a crash.
        said.crashed = f"{type(err).__name__}: {err}"
    said.ended_s = round(time.monotonic() - began, 3)
    said.log_span = (said.log_span[0], target.log_size())
    return said


async def _api(target: Target, said: Said, text: str, streamed: bool) -> None:
    async with Client(target.daemon.socket) as client:
        if not streamed:
            reply = await client.say(text, wait=True)
        else:
            # Its id is known as soon as it is queued, so a hung one can be named.
            async with client.speech(wait=True) as speech:
                await speech.feed(text)
                said.id = await speech.id()
                reply = await speech.close()
        said.id, said.played_ms = reply.utterance_id, reply.played_ms


async def _cli(target: Target, said: Said, text: str, stdin: bool) -> None:
    daemon = target.daemon
    args = ("say", "--wait", "-") if stdin else ("say", "--wait", text)
    proc = await spawn_cli(daemon.config, daemon.env, *args)
    try:
        out, err = await proc.communicate(text.encode() if stdin else b"")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = err.decode(errors="replace").strip().splitlines()
    if proc.returncode == 0:
        # "u12: played 2.34 s"; the judge prefers the `finished` event's exact ms.
        ident, _, played = out.decode().partition(": played ")
        said.id = ident.strip()
        said.played_ms = round(float(played.split()[0]) * 1000)
    elif proc.returncode == 1 and len(lines) == 1:
        said.error = lines[0]
    else:
        # No one-line reason (a traceback, a signal): nothing a caller can act on.
        said.crashed = f"say exited {proc.returncode}: " + " | ".join(lines[-5:])
