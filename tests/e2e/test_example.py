"""End to end, issue 5's "done when": the README's LLM example, run as a user would, is
heard before its last token is sent, and a `stop` from another terminal silences it within
250 ms, with the heard text in its output."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    killed_at_exit,
    quiet_for,
    record_until,
    sound_s,
)
from tests.harness import audio_analysis as aa
from tests.harness import examples
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = examples.LLM_SPEAK


@pytest.fixture
def tone_script() -> ToneScript:
    return ToneScript(api_key=KEY, hold_until_force=True)


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
    async with killed_at_exit(proc):
        first = await read_until(proc.stdout, "first audio", lines)
        tokens_then = int(_group(r"(\d+) tokens sent", first))
        await record_until(recorder, lambda x: sound_s(x[start:]) > 0.8)
        asked = time.monotonic()
        stopped = await run_cli(daemon.config, daemon.env, "stop")
        assert stopped.returncode == 0, stopped.stderr
        await read_until(proc.stdout, "cancelled", lines)
        heard = await read_until(proc.stdout, "heard:", lines)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    lines.extend(out.decode().splitlines(keepends=True))

    total = len(re.findall(r"\s*\S{1,4}", _answer()))
    assert tokens_then < total  # speech started before the last token was sent
    x = await quiet_for(recorder, start, 0.3)
    end = aa.sound_spans(x[start:], RATE)[-1][1]
    assert recorder.arrival_time(start + end - 1) - asked < 0.250
    heard_text = _group(r"heard: '(.*)'", heard)
    assert heard_text
    assert _answer().startswith(heard_text)
    assert len(heard_text) < len(_answer())


def _answer() -> str:
    return str(examples.load(EXAMPLE).ANSWER)


def _group(pattern: str, line: str) -> str:
    found = re.search(pattern, line)
    assert found is not None, line
    return found.group(1)
