"""Starting the daemon: a second daemon on a live socket is refused and leaves the first
alone, a stale socket is replaced, a daemon removes only its own socket, and `-v` in any
position starts a local synthesizer that speaks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.common import KEY, closed_port
from tests.e2e.test_local import SENTENCE, say_and_hear
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, write_config
from tests.harness.pulse import PulseServer, Recorder

CLOUD_ENDPOINT = "127.0.0.1:9"
"""Nothing answers here. Daemons that never synthesise get it and a key, so they do not
start the local synthesizer."""


@pytest.fixture
def env(pulse: PulseServer) -> dict[str, str]:
    return clean_env(pulse.env)


@pytest.fixture
async def own_daemons() -> AsyncIterator[list[Daemon]]:
    """Daemons a test starts by hand (on shared or prepared sockets, which `Daemons`
    does not allow); stopped after the test, each expected to exit 0 with no traceback."""
    started: list[Daemon] = []
    yield started
    # All of them, even if one fails to stop in time.
    codes = await asyncio.gather(*(daemon.stop() for daemon in started), return_exceptions=True)
    for daemon, code in zip(started, codes, strict=True):
        assert code == 0, daemon.log
        assert "Traceback" not in daemon.log, daemon.log


async def run_daemon_to_exit(config: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """`speechkit-player daemon --config CONFIG` expected to exit by itself; its exit code
    and the non-empty lines of its stderr."""
    result = await run_cli(config, env, "daemon")
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()]


async def test_a_second_daemon_is_refused_and_the_first_keeps_serving(
    daemons: Daemons, env: dict[str, str], tmp_path: Path
) -> None:
    first = await daemons.start(CLOUD_ENDPOINT, KEY)
    assert first.proc is not None
    # The same config, and one for the same socket with no key: that one would go local
    # and start a synthesizer child, which a refused daemon must not get as far as.
    folder = tmp_path / "second"
    folder.mkdir()
    second = write_config(folder, None, api_key=None, control={"socket": str(first.socket)})

    for config in (first.config, second):
        code, lines = await run_daemon_to_exit(config, env)
        assert code != 0
        assert len(lines) == 1, lines
        assert "already" in lines[0]
        assert str(first.proc.pid) in lines[0]
        assert "Traceback" not in lines[0]

    assert first.socket.exists(), "the refused daemon removed the live daemon's socket"
    status = await run_cli(first.config, env, "status")
    assert status.returncode == 0, status.stderr
    assert first.alive


async def test_a_stale_socket_is_replaced(
    tmp_path: Path, env: dict[str, str], own_daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, CLOUD_ENDPOINT, api_key=KEY)
    daemon = Daemon(config, env)
    # What a killed daemon leaves behind: a socket file that nobody listens on.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(daemon.socket))
    assert daemon.socket.exists()

    own_daemons.append(daemon)
    await daemon.start()  # returns once `status` answers through the socket
    assert f"removing stale control socket {daemon.socket}" in daemon.log
    assert await daemon.stop() == 0
    assert not daemon.socket.exists()


async def test_a_daemon_removes_only_its_own_socket(
    tmp_path: Path, env: dict[str, str], own_daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, CLOUD_ENDPOINT, api_key=KEY)
    first = Daemon(config, env)
    own_daemons.append(first)
    await first.start()
    # Someone removes the first daemon's socket by hand and starts another daemon there.
    first.socket.unlink()
    second = Daemon(config, env)
    second.log_path = tmp_path / "second.log"
    own_daemons.append(second)
    await second.start()

    assert await first.stop() == 0
    assert second.socket.exists(), "the first daemon removed the second daemon's socket"
    status = await run_cli(config, env, "status")
    assert status.returncode == 0, status.stderr


async def test_a_file_in_the_sockets_place_is_left_alone(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a socket")
    config = write_config(tmp_path, CLOUD_ENDPOINT, api_key=KEY, control={"socket": str(path)})
    code, lines = await run_daemon_to_exit(config, env)
    assert code != 0
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert "not a socket" in lines[0]
    assert path.read_text() == "not a socket"


# --- `-v` and the local synthesizer child -------------------------------------------------

VERBOSE_STARTS = [
    pytest.param(["-v", "daemon"], True, None, {}, id="v-first-config-no-key"),
    pytest.param(["daemon", "-v"], True, "local", {}, id="v-after-config-endpoint-local"),
    pytest.param(
        ["-v", "daemon"], False, "closed", {"fallback": "local"}, id="v-first-default-fallback"
    ),
    pytest.param(["daemon", "--verbose"], False, None, {}, id="verbose-after-default-no-key"),
]


@pytest.mark.parametrize(("args", "with_config", "endpoint", "speechkit"), VERBOSE_STARTS)
async def test_a_verbose_daemon_speaks_through_its_local_synthesizer(
    tmp_path: Path,
    env: dict[str, str],
    recorder: Recorder,
    own_daemons: list[Daemon],
    args: list[str],
    with_config: bool,
    endpoint: str | None,
    speechkit: dict[str, object],
) -> None:
    if endpoint == "closed":
        endpoint = closed_port()
    api_key = KEY if endpoint is not None else None
    if with_config:
        config = write_config(tmp_path, endpoint, api_key=api_key, speechkit=speechkit)
        args = [*args, "--config", str(config)]
    else:
        # No --config: the daemon (and its child) read the default one.
        folder = tmp_path / "xdg" / "speechkit-player"
        folder.mkdir(parents=True)
        config = write_config(folder, endpoint, api_key=api_key, speechkit=speechkit)
        env = {**env, "XDG_CONFIG_HOME": str(folder.parent)}
    daemon = Daemon(config, env, args)
    own_daemons.append(daemon)
    await daemon.start()

    played, _heard = await say_and_hear(daemon, recorder, SENTENCE)
    assert played > 1.0
    log = daemon.log
    assert "DEBUG" in log, "-v did not turn on debug logging"
    assert "local synthesizer ready" in log
    assert "unrecognized arguments" not in log
    assert "local synthesizer exited" not in log
