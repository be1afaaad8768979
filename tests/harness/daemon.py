"""Running the real daemon and CLI as subprocesses, the way a user does."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0


def write_config(
    folder: Path, endpoint: str | None, *, api_key: str | None, **sections: dict[str, object]
) -> Path:
    """A config for the null sink: [audio] device "pulse" at 48 kHz, socket in ``folder``,
    no phrase cache (so every utterance reaches the server) unless ``cache`` says so.
    `endpoint` None leaves the endpoint (and TLS) at their defaults: the cloud."""
    speechkit: dict[str, object] = {} if endpoint is None else {"endpoint": endpoint, "tls": False}
    if api_key is not None:
        speechkit["api_key"] = api_key
    tables: dict[str, dict[str, object]] = {
        "speechkit": speechkit,
        "audio": {"device": "pulse", "samplerate": 48000},
        "control": {"socket": str(folder / "control.sock")},
        "cache": {"max_mb": 0},
        # Tests that speak SSIP choose their own socket: "auto" would serve the machine's.
        "ssip": {"socket": "off"},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    lines = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path = folder / "player.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):  # an inline table
        return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    return repr(value)


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """The sound server's environment without any credentials of the person running tests."""
    return {k: v for k, v in base.items() if not k.startswith("YANDEX_")}


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def spawn_cli(config: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """``python -m player COMMAND --config CONFIG ARGS...`` with all three pipes open."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "player",
        *args[:1],
        "--config",
        str(config),
        *args[1:],
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(
    config: Path, env: dict[str, str], *args: str, stdin: bytes | None = None
) -> CliResult:
    proc = await spawn_cli(config, env, *args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin or b""), CLI_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


class Daemon:
    """`speechkit-player daemon --config PATH` in a subprocess; its stderr goes to a file.

    ``args`` replaces the CLI's arguments (say, to put `-v` first or leave `--config` to
    the default); the socket is still looked for beside ``config``."""

    def __init__(
        self, config: Path, env: dict[str, str], args: Sequence[str] | None = None
    ) -> None:
        self.config = config
        self.env = env
        self.args = list(args) if args is not None else ["daemon", "--config", str(config)]
        self.socket = config.parent / "control.sock"
        self.log_path = config.parent / "daemon.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "player",
                *self.args,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"daemon exited at start:\n{self.log}")
                if self.socket.exists():
                    status = await run_cli(self.config, self.env, "status")
                    if status.returncode == 0:
                        return
                # Without NOTIFY_SOCKET, the socket answering is its only sign of readiness.
                await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """SIGTERM, then the exit code (killed after STOP_TIMEOUT)."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is not None:
            return proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Daemons:
    """Daemons started in numbered folders under `base`; `stop_all` stops them and checks
    each exited 0, removed its socket and logged no traceback."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self._base = base
        self._env = env
        self._started: list[Daemon] = []

    async def start(
        self,
        endpoint: str | None,
        api_key: str | None,
        **sections: dict[str, object],
    ) -> Daemon:
        """`speechkit-player daemon --config PATH` with a config from the arguments (see
        `write_config`)."""
        return await self.start_with_env({}, endpoint, api_key, **sections)

    async def start_with_env(
        self,
        env: dict[str, str],
        endpoint: str | None,
        api_key: str | None,
        **sections: dict[str, object],
    ) -> Daemon:
        """`start`, with ``env`` added to the environment (the CLI calls get it too)."""
        folder = self._base / f"daemon{len(self._started)}"
        folder.mkdir()
        config = write_config(folder, endpoint, api_key=api_key, **sections)
        daemon = Daemon(config, {**self._env, **env}, ["daemon", "--config", str(config)])
        self._started.append(daemon)
        await daemon.start()
        return daemon

    async def stop_all(self) -> None:
        for daemon in self._started:
            assert await daemon.stop() == 0, daemon.log
            assert not daemon.socket.exists(), "the daemon left its socket behind"
            assert "Traceback" not in daemon.log, daemon.log
