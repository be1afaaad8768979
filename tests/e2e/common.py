"""What the end-to-end tests share besides fixtures (those are in `conftest.py`): the
constants, measurements of the recording, waits on it, and an event listener."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from player.control.client import Client, EventStream
from player.control.views import event_dict
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import RATE as RATE  # the sink's; every daemon here plays at it
from tests.harness.pulse import Recorder

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
"""Seconds one step of a test may take: a reply, a sound heard, a call served. A module
whose steps need longer defines its own and passes it on (`record_until(..., within=)`)."""
KEY = "sk-test-key-5f1e9c0d7b"
"""The API key the tone server requires and the daemons are given."""

Recording = npt.NDArray[np.int16]
Check = Callable[[Recording], bool]
Events = list[dict[str, object]]


# --- The recording ---------------------------------------------------------------------------


def sound_samples(x: Recording) -> int:
    """How many samples of `x` are sound (the sum of its sound spans)."""
    return sum(end - start for start, end in aa.sound_spans(x, RATE))


def sound_s(x: Recording) -> float:
    return sound_samples(x) / RATE


def sound_ms(x: Recording) -> float:
    return sound_samples(x) * 1000 / RATE


def heard_and_quiet(min_sound_s: float, quiet_s: float = 0.15, *, since: int = 0) -> Check:
    """From sample `since` on, at least `min_sound_s` of sound, then `quiet_s` of silence."""

    def check(x: Recording) -> bool:
        spans = aa.sound_spans(x[since:], RATE)
        if not spans:
            return False
        total = sum(end - start for start, end in spans)
        return total >= min_sound_s * RATE and len(x) - since - spans[-1][1] >= quiet_s * RATE

    check.__name__ = f"heard {min_sound_s:.2f} s then {quiet_s:.2f} s of silence"
    return check


async def record_until(recorder: Recorder, check: Check, *, within: float = TIMEOUT) -> Recording:
    """The whole recording, once `check` holds for it (TimeoutError after `within` s)."""
    return await asyncio.to_thread(recorder.wait_until, check, within)


async def heard_at_least(recorder: Recorder, start: int, ms: float) -> None:
    """Returns once `ms` of sound were recorded after sample `start`."""
    await record_until(recorder, lambda x: sound_ms(x[start:]) >= ms)


async def quiet_for(recorder: Recorder, start: int, seconds: float) -> Recording:
    """The recording once it has been silent for `seconds` after some sound."""
    return await record_until(recorder, heard_and_quiet(0.0, seconds, since=start))


# --- The daemon and its clients --------------------------------------------------------------


async def status_of(daemon: Daemon) -> dict[str, object]:
    """`status`, parsed."""
    result = await run_cli(daemon.config, daemon.env, "status")
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict)
    return parsed


async def pieces(*texts: str) -> AsyncIterator[str]:
    """The texts, as a stream of text to say."""
    for text in texts:
        yield text


@contextlib.asynccontextmanager
async def killed_at_exit(
    proc: asyncio.subprocess.Process,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Kills `proc` on leaving the block if it is still running, so a failed test leaves no
    client behind."""
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def closed_port() -> str:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def of(events: Events, utterance_id: str | None, kind: str | None = None) -> Events:
    """The events of `utterance_id` (of any, if None), of `kind` (of any, if None)."""
    return [e for e in events if utterance_id in (None, e["id"]) and kind in (None, e["event"])]


class Listener:
    """Every event from subscribing on, as the CLI prints it, in `events`."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.events: Events = []
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> Listener:
        self._stream = await self._client.subscribe()
        self._task = asyncio.create_task(self._collect(self._stream))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stream.close()
        self._task.cancel()

    async def _collect(self, stream: EventStream) -> None:
        async for event in stream:
            async with self._arrived:
                self.events.append(event_dict(event))
                self._arrived.notify_all()

    async def until(self, kind: str, utterance_id: str | None = None) -> Events:
        """Waits for the first event of `kind` (of `utterance_id`, if given); returns the
        events up to and including it."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: bool(of(self.events, utterance_id, kind))),
                TIMEOUT,
            )
            first = next(i for i, e in enumerate(self.events) if of([e], utterance_id, kind))
            return self.events[: first + 1]

    async def count(self, kind: str, utterance_id: str, n: int) -> Events:
        """Waits for `n` events of `kind` of `utterance_id`; returns them."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(of(self.events, utterance_id, kind)) >= n),
                TIMEOUT,
            )
            return of(self.events, utterance_id, kind)

    async def finished(self, utterance_id: str) -> None:
        await self.until("finished", utterance_id)


# --- The benchmarks ---------------------------------------------------------------------------

BENCH_STOP_TIMEOUT = 15.0
"""Seconds a timed-out benchmark gets to stop its daemons, broker and sound server."""


def run_benchmark(module: str, timeout: float, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` from the repo root; on a timeout, fail after stopping it and
    everything it started."""
    command = [sys.executable, "-m", module, *args]
    # Its own process group, so a last-resort kill reaches its daemons, servers and Piper.
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGINT unwinds asyncio.run, so the benchmark's own clean-up stops what it started.
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=BENCH_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=BENCH_STOP_TIMEOUT)
        pytest.fail(f"{module} still running after {timeout} s:\n{stderr[-4000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
