"""player.synthesis.local_process: the command line the child is started with is one the
CLI accepts, and a child that rejects its command line is not restarted."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import grpc
import pytest

from player import cli
from player.cli import _parser
from player.errors import SynthesisError
from player.synthesis import local_process
from player.synthesis.local_process import CLI, LocalEngineProcess

TIMEOUT = 10.0
"""Bound on every wait here; each child is a bare interpreter that exits at once."""

MakeProcess = Callable[..., LocalEngineProcess]


@pytest.fixture
async def make_process() -> AsyncIterator[MakeProcess]:
    """LocalEngineProcess instances, closed (channel and private folder) after the test."""
    made: list[LocalEngineProcess] = []

    def make(
        config: Path | None, verbose: bool = False, cli: Sequence[str] = CLI
    ) -> LocalEngineProcess:
        process = LocalEngineProcess(config, verbose, cli)
        made.append(process)
        return process

    yield make
    for process in made:
        await process.aclose()


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("config", [None, Path("/etc/speechkit-player/player.toml")])
async def test_the_child_command_line_is_accepted_by_the_cli(
    make_process: MakeProcess, verbose: bool, config: Path | None
) -> None:
    process = make_process(config, verbose)
    command = process.command()
    assert command[:3] == [sys.executable, "-m", "player"]
    # The real parser: it exits (SystemExit 2) on anything it does not accept.
    args = _parser().parse_args(command[3:])
    assert args.command == "serve-local"
    assert args.listen == process.address
    assert args.exit_with_stdin
    assert args.config == config
    assert args.verbose is verbose


def exiting_cli(code: int, starts: Path) -> list[str]:
    """A stand-in for `python -m player`: notes each start in ``starts``, then exits
    with ``code`` (whatever arguments it is given)."""
    script = f"import sys; open({str(starts)!r}, 'a').write('started\\n'); sys.exit({code})"
    return [sys.executable, "-c", script]


def start_count(starts: Path) -> int:
    return len(starts.read_text().splitlines()) if starts.exists() else 0


async def test_a_child_that_rejects_its_command_line_is_not_restarted(
    make_process: MakeProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starts = tmp_path / "starts"
    process = make_process(None, cli=exiting_cli(2, starts))
    caplog.set_level(logging.INFO, logger="player.synthesis.local_process")

    # `run` returns by itself instead of restarting with backoff.
    await asyncio.wait_for(process.run(), TIMEOUT)
    assert start_count(starts) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "exit code 2" in errors[0].getMessage()
    assert "not restarting" in errors[0].getMessage()
    # Every utterance from now on fails at once with the reason.
    for _ in range(2):
        with pytest.raises(SynthesisError, match="refused its command line or config"):
            await process.wait_ready(timeout=TIMEOUT)


async def test_the_child_gets_neither_credentials_nor_systemds_socket(
    make_process: MakeProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child with NOTIFY_SOCKET could tell systemd READY=1, or feed the watchdog, for us.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "YANDEX_API_KEY"):
        monkeypatch.setenv(name, "1")
    seen = tmp_path / "environment"
    script = f"import os, sys; open({str(seen)!r}, 'w').write(' '.join(os.environ)); sys.exit(2)"
    process = make_process(None, cli=[sys.executable, "-c", script])
    await asyncio.wait_for(process.run(), TIMEOUT)
    names = set(seen.read_text().split())
    assert "PATH" in names
    assert not names & {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "YANDEX_API_KEY"}


async def test_a_child_that_exits_otherwise_is_restarted(
    make_process: MakeProcess, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    process = make_process(None, cli=exiting_cli(1, starts))
    running = asyncio.create_task(process.run())
    try:
        with pytest.raises(SynthesisError, match="exited with code 1"):
            await process.wait_ready(timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):  # the first restart comes after 1 s
            while start_count(starts) < 2:
                assert not running.done()
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_the_exit_code_not_restarted_is_the_clis_usage_code() -> None:
    # The synthesis layer may not import the CLI, so it keeps its own copy of the code.
    assert local_process.EXIT_USAGE == cli.EXIT_USAGE


def serving_cli(starts: Path, first_lives_s: float) -> list[str]:
    """A stand-in for `python -m player` that answers on its `--listen` socket (any gRPC
    server will do: readiness is the socket answering). The first one started exits
    with code 1 after ``first_lives_s``; the ones after it stay up."""
    script = f"""
import os, sys, time
from concurrent import futures
import grpc
first = not os.path.exists({str(starts)!r})
open({str(starts)!r}, 'a').write('started\\n')
server = grpc.server(futures.ThreadPoolExecutor(1))
server.add_insecure_port(sys.argv[sys.argv.index('--listen') + 1])
server.start()
time.sleep({first_lives_s} if first else 60)
os._exit(1)
"""
    return [sys.executable, "-c", script]


async def test_a_child_that_ran_and_died_is_waited_for(
    make_process: MakeProcess, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    process = make_process(None, cli=serving_cli(starts, first_lives_s=0.5))
    running = asyncio.create_task(process.run())
    try:
        await process.wait_ready(timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):  # the first child exits after 0.5 s
            while True:
                if not process.ready:
                    break
                await asyncio.sleep(0.05)
        # Restarted after 1 s: waited for, not failed at once.
        await process.wait_ready(timeout=TIMEOUT)
        assert start_count(starts) == 2
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_child_that_never_came_up_fails_with_a_code_no_retry_waits_out(
    make_process: MakeProcess, tmp_path: Path
) -> None:
    process = make_process(None, cli=exiting_cli(1, tmp_path / "starts"))
    running = asyncio.create_task(process.run())
    try:
        with pytest.raises(SynthesisError, match="exited with code 1") as failed:
            await process.wait_ready(timeout=TIMEOUT)
        assert failed.value.code is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
