"""Every command, given a missing daemon, a bad config or bad arguments, and the daemon
given a control socket it cannot create: one line on stderr, a non-zero exit, no traceback.

The real CLI runs as a subprocess, as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.daemon import Daemons, clean_env, run_cli, spawn_cli, write_config
from tests.harness.pulse import PulseServer

TIMEOUT = 20.0
"""Seconds for one command to fail: each should take well under one."""
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
CLOUD_ENDPOINT = "127.0.0.1:9"
"""Nothing answers here; with a key, the daemon will not start the local synthesizer."""

COMMANDS = {
    "daemon": [],
    "serve-local": [],
    "say": ["hello"],
    "stop": [],
    "cancel": ["u1"],
    "pause": [],
    "resume": [],
    "status": [],
    "devices": [],
    "events": [],
}
CLIENT_COMMANDS = [name for name in COMMANDS if name not in ("daemon", "serve-local")]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "player", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env if env is not None else clean_env(dict(os.environ)),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Checks the command failed with ``code`` and said so in one line; returns the line."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("speechkit-player: "), lines[0]
    assert result.returncode == code, output
    return lines[0]


def command(name: str, config: Path | None, *extra: str) -> list[str]:
    return [name, *(["--config", str(config)] if config else []), *extra, *COMMANDS[name]]


@pytest.mark.parametrize("name", CLIENT_COMMANDS)
def test_a_missing_daemon(name: str, tmp_path: Path) -> None:
    socket_path = tmp_path / "nobody.sock"
    config = tmp_path / "player.toml"
    config.write_text(f'[control]\nsocket = "{socket_path}"\n')
    line = one_line(run(command(name, config)), EXIT_FAILED)
    assert "cannot reach the daemon" in line
    assert str(socket_path) in line


@pytest.mark.parametrize("name", CLIENT_COMMANDS)
def test_a_stale_socket(name: str, tmp_path: Path) -> None:
    """A socket file nobody listens on, as a killed daemon leaves it: also no hang."""
    socket_path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(socket_path))
    config = tmp_path / "player.toml"
    config.write_text(f'[control]\nsocket = "{socket_path}"\n')
    line = one_line(run(command(name, config)), EXIT_FAILED)
    assert "cannot reach the daemon" in line


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_config_with_one_error(name: str, tmp_path: Path) -> None:
    config = tmp_path / "player.toml"
    config.write_text("[audio]\nsamplerate = 5\n")
    line = one_line(run(command(name, config)), EXIT_USAGE)
    assert "invalid configuration" in line
    assert "samplerate" in line


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize(
    "extra",
    [["--bogus"], ["--config"]],
    ids=["unknown-option", "option-without-value"],
)
def test_bad_arguments(name: str, extra: list[str]) -> None:
    line = one_line(run([name, *extra, *COMMANDS[name]]), EXIT_USAGE)
    assert "--help" in line


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["say"], ["cancel"]])
def test_a_missing_or_unknown_command(argv: list[str]) -> None:
    one_line(run(argv), EXIT_USAGE)


# --- the daemon's control socket ------------------------------------------------------------


def daemon_with_socket(folder: Path, path: Path | str, env: dict[str, str]) -> str:
    """Runs the daemon with its control socket at ``path`` (a key, so that it would speak
    with the cloud, not start the local synthesizer); returns its one line."""
    config = write_config(folder, CLOUD_ENDPOINT, api_key="k", control={"socket": str(path)})
    line = one_line(run(command("daemon", config), env), EXIT_FAILED)
    assert str(path) in line
    return line


@pytest.fixture
def env(pulse: PulseServer) -> dict[str, str]:
    """A sound server the daemon can open, so that it is the socket that fails."""
    return clean_env(pulse.env)


@pytest.mark.parametrize(
    "path", ["/proc/speechkit-player-test.sock", "/proc/speechkit-player-test/control.sock"]
)
def test_a_socket_under_proc(path: str, tmp_path: Path, env: dict[str, str]) -> None:
    daemon_with_socket(tmp_path, path, env)


def test_a_socket_under_a_regular_file(tmp_path: Path, env: dict[str, str]) -> None:
    parent = tmp_path / "a-file"
    parent.write_text("")
    daemon_with_socket(tmp_path, parent / "control.sock", env)


def test_a_socket_path_too_long_for_unix_sockets(tmp_path: Path, env: dict[str, str]) -> None:
    daemon_with_socket(tmp_path, tmp_path / ("s" * 120 + ".sock"), env)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_a_socket_in_a_folder_without_write_permission(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    try:
        line = daemon_with_socket(tmp_path, folder / "control.sock", env)
        assert "Permission denied" in line
    finally:
        folder.chmod(0o700)


# --- a running daemon, a caller that goes away ------------------------------------------------


async def test_events_ends_quietly_on_ctrl_c(daemons: Daemons) -> None:
    daemon = await daemons.start(CLOUD_ENDPOINT, "k")
    events = await spawn_cli(daemon.config, daemon.env, "events")
    assert events.stdout is not None
    try:
        # SIGINT must come once `events` listens (inside asyncio.run), not while it is
        # still importing: say things until one is reported.
        async with asyncio.timeout(TIMEOUT):
            while True:
                said = await run_cli(daemon.config, daemon.env, "say", "Hello.")
                assert said.returncode == 0, said.stderr
                try:
                    line = await asyncio.wait_for(events.stdout.readline(), 0.5)
                except TimeoutError:
                    continue
                assert json.loads(line)["event"] == "queued"
                break
        events.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(events.communicate(), TIMEOUT)
    finally:
        if events.returncode is None:
            events.kill()
            await events.wait()
    assert events.returncode == EXIT_INTERRUPTED
    assert err.decode() == ""


@pytest.mark.parametrize("name", ["status", "devices"])
async def test_output_to_a_reader_that_went_away(daemons: Daemons, name: str) -> None:
    daemon = await daemons.start(CLOUD_ENDPOINT, "k")
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to write_end fails: EPIPE
    try:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "player", name, "--config", str(daemon.config)],
            env=daemon.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == EXIT_FAILED
    assert err.decode() == ""
