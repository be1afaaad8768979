"""Row 6: the README's LLM example (`examples/llm_speak.py`) against the daemon's local
voice, and the same opening spoken whole as the voice's own reference.

The example runs in this process, as written, so the clock starts at its first request
rather than at a Python start-up. It is stopped `LISTEN_S` in, once its short first
sentence ("Sure.") and the start of the next were heard: the longest silence inside that
stretch is the pause after the first sentence, which with streamed text is where a
listener hears the daemon waiting for the next sentence to be written and synthesised.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from types import ModuleType
from typing import TYPE_CHECKING

from bench import measure
from bench.measure import Run
from player.control.client import Client
from tests.harness import examples
from tests.harness.daemon import Daemon

if TYPE_CHECKING:
    from bench.__main__ import Bench

STREAMED, WHOLE = "6a. LLM example, local voice", "6b. its opening whole, local voice"
LISTEN_S = 3.0
"""Seconds after the request at which the example is stopped: past the pause after its
first sentence, before the end of its second."""
TIMEOUT = 60.0


def opening(answer: str) -> str:
    """The answer's first two sentences, which is what LISTEN_S covers."""
    return " ".join(re.findall(r"[^.!?]+[.!?]", answer)[:2]).strip()


async def listen(bench: Bench, daemon: Daemon, name: str, speak: asyncio.Task[None]) -> Run:
    """Stop `speak` LISTEN_S after it started; measure what the sink heard meanwhile."""
    since = bench.recorder.sample_count()
    started = time.monotonic()
    try:
        await asyncio.sleep(LISTEN_S)  # the listening window, not a wait for an event
        async with Client(daemon.socket) as client:
            await client.stop()
        await asyncio.wait_for(speak, TIMEOUT)
    finally:
        speak.cancel()
    x = await asyncio.to_thread(measure.heard, bench.recorder, since, 0.5, TIMEOUT)
    return measure.analyse(name, bench.recorder, since, started, 0.0, x)


async def streamed(bench: Bench, daemon: Daemon, module: ModuleType) -> Run:
    """The example as written: tokens at its LLM pace, through `player.Client`."""
    out = io.StringIO()

    async def speak() -> None:
        with contextlib.redirect_stdout(out):  # its progress lines, not the bench's table
            await module.speak("When is the museum open?", str(daemon.socket))

    return await listen(bench, daemon, STREAMED, asyncio.create_task(speak()))


async def whole(bench: Bench, daemon: Daemon, text: str) -> Run:
    """The same opening given at once: the pause the voice itself makes."""

    async def speak() -> None:
        async with Client(daemon.socket) as client:
            with contextlib.suppress(Exception):  # ended by the stop, as expected
                await client.say(text, wait=True)

    return await listen(bench, daemon, WHOLE, asyncio.create_task(speak()))


async def rounds(bench: Bench, daemon: Daemon, runs: int) -> list[Run]:
    """Rows 6a and 6b, alternating, `runs` times each, on the warm local daemon."""
    module = examples.load(examples.LLM_SPEAK)
    text = opening(str(module.ANSWER))
    results: list[Run] = []
    for _ in range(runs):
        results.append(await streamed(bench, daemon, module))
        results.append(await whole(bench, daemon, text))
    return results
