"""End to end, issue 5's "done when": the README's LLM example, run as a user would, is
heard before its last token is sent, and a `stop` from another terminal silences it within
250 ms, with the heard text in its output."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llm_speak.py"
RATE = 48000
TIMEOUT = 30.0
KEY = "sk-test-key-example"


@pytest.fixture
async def tone_server() -> AsyncIterator[ToneServer]:
    async with ToneServer(ToneScript(api_key=KEY, hold_until_force=True)) as server:
        yield server


@pytest.fixture
async def daemon(tone_server: ToneServer, daemons: Daemons) -> Daemon:
    return await daemons.start(tone_server.address, KEY)


def test_the_readme_shows_the_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```" in readme


async def read_until(stream: asyncio.StreamReader, pattern: str, lines: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), TIMEOUT)).decode()
        if not line:
            raise AssertionError(f"the example ended before {pattern!r}: {lines}")
        lines.append(line)
        if re.search(pattern, line):
            return line


async def test_the_llm_example_speaks_early_and_stop_reports_what_was_heard(
    daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--socket",
        str(daemon.socket),
        env=daemon.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        first = await read_until(proc.stdout, "first audio", lines)
        tokens_then = int(_group(r"(\d+) tokens sent", first))
        await asyncio.to_thread(
            recorder.wait_until,
            lambda x: (
                len(aa.sound_spans(x[start:], RATE)) > 0
                and sum(b - a for a, b in aa.sound_spans(x[start:], RATE)) > 0.8 * RATE
            ),
            TIMEOUT,
        )
        asked = time.monotonic()
        stopped = await run_cli(daemon.config, daemon.env, "stop")
        assert stopped.returncode == 0, stopped.stderr
        await read_until(proc.stdout, "cancelled", lines)
        heard = await read_until(proc.stdout, "heard:", lines)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    lines.extend(out.decode().splitlines(keepends=True))

    total = len(re.findall(r"\s*\S{1,4}", _answer()))
    assert tokens_then < total  # speech started before the last token was sent
    x = await asyncio.to_thread(
        recorder.wait_until,
        lambda x: len(x) - start - aa.sound_spans(x[start:], RATE)[-1][1] >= 0.3 * RATE,
        TIMEOUT,
    )
    end = aa.sound_spans(x[start:], RATE)[-1][1]
    assert recorder.arrival_time(start + end - 1) - asked < 0.250
    heard_text = _group(r"heard: '(.*)'", heard)
    assert heard_text
    assert _answer().startswith(heard_text)
    assert len(heard_text) < len(_answer())


def _answer() -> str:
    spec = importlib.util.spec_from_file_location("llm_speak", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.ANSWER)


def _group(pattern: str, line: str) -> str:
    found = re.search(pattern, line)
    assert found is not None, line
    return found.group(1)
