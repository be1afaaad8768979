"""The daemon's own local synthesizer: `serve-local` as a child process on a private
Unix socket, restarted if it dies.

A child rather than threads in the daemon: Piper's model and onnxruntime stay out of the
daemon's memory and its GIL, so the audio callback never waits behind a sentence being
synthesised, and a crash in the engine costs one utterance, not the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from player.errors import SynthesisError
from player.synthesis.interface import CallResult, Piece, Sink, VoiceChoice
from player.synthesis.speechkit import SpeechKitClient

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT = 120.0
"""Seconds the child may take to load its voices before we call the start failed."""
STOP_TIMEOUT = 3.0
RESTART_WAIT = 30.0
"""Seconds an utterance waits for a child that ran and died to be back: the restart
backoff (1 s at first) plus loading the voice (a few s)."""
_BACKOFF_MIN, _BACKOFF_MAX = 1.0, 30.0
# The child is ready the moment its socket appears: look for it often.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]
_STABLE = 60.0
"""A child that ran this long resets the restart backoff."""
CLI = (sys.executable, "-m", "player")
"""How the child's command line starts: this interpreter, running our CLI."""
EXIT_USAGE = 2
"""The CLI's exit code for bad arguments or config (player.cli.EXIT_USAGE)."""
_SYSTEMD_VARIABLES = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
"""Addressed to the daemon alone (see player/systemd.py)."""


def _runtime_dir() -> str | None:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime if runtime and os.path.isdir(runtime) else None


class LocalEngineProcess:
    """Runs and supervises `speechkit-player serve-local` on a socket only we can reach."""

    def __init__(
        self, config: Path | None, verbose: bool = False, cli: Sequence[str] = CLI
    ) -> None:
        """``cli`` is how to run the command line; the tests give one that fails."""
        self._config = config
        self._verbose = verbose
        self._cli = list(cli)
        # mkdtemp makes the folder 0700: nobody else can reach the socket inside.
        self._folder = Path(tempfile.mkdtemp(prefix="speechkit-player-", dir=_runtime_dir()))
        self.address = f"unix:{self._folder / 'local.sock'}"
        """Where to dial it."""
        self.channel = grpc.aio.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
        """The daemon's channel to it; `aclose` closes it."""
        self._ready = False
        self._failure: str | None = None
        """Why the last child ended, until a new one answers."""
        self._ran = False
        """A child has answered since the daemon started: one that dies is restarted."""
        self._given_up = False
        """Not restarted any more (EXIT_USAGE)."""
        self._changed = asyncio.Condition()

    @property
    def ready(self) -> bool:
        """A child answers now."""
        return self._ready

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> None:  # noqa: ASYNC109
        """Return once a child answers. While one that ran is being restarted, wait for
        it (at most RESTART_WAIT s); a child that never came up, or is not restarted,
        fails the call at once with why (FAILED_PRECONDITION: no retry cures that).
        UNAVAILABLE after `timeout` s of starting."""
        if self._ran:
            timeout = min(timeout, RESTART_WAIT)
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not self._ready:
                    if self._failure is not None and (self._given_up or not self._ran):
                        raise SynthesisError(
                            f"{self._failure}; see the daemon's log",
                            grpc.StatusCode.FAILED_PRECONDITION,
                        )
                    await self._changed.wait()
        except TimeoutError:
            why = (
                f"{self._failure}, and it is not back within {timeout:.0f} s"
                if self._failure is not None
                else f"the local synthesizer did not start within {timeout:.0f} s"
            )
            raise SynthesisError(why, grpc.StatusCode.UNAVAILABLE) from None

    async def _set_state(self, ready: bool, failure: str | None, given_up: bool = False) -> None:
        async with self._changed:
            self._ready, self._failure, self._given_up = ready, failure, given_up
            self._ran = self._ran or ready
            self._changed.notify_all()

    def command(self) -> list[str]:
        command = [*self._cli, "serve-local", "--listen", self.address, "--exit-with-stdin"]
        if self._config is not None:
            command += ["--config", str(self._config)]
        return command + (["--verbose"] if self._verbose else [])

    async def run(self) -> None:
        """Start the child and restart it whenever it exits, until cancelled; return if
        it exits with a usage or config error (EXIT_USAGE), which no restart cures."""
        backoff = _BACKOFF_MIN
        # The child needs no cloud credentials: keep them out of its environment. Nor
        # systemd's notify socket: it could say READY=1 (or feed the watchdog) for us.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("YANDEX_") and k not in _SYSTEMD_VARIABLES
        }
        try:
            while True:
                started = time.monotonic()
                child = await asyncio.create_subprocess_exec(
                    *self.command(), stdin=subprocess.PIPE, env=env
                )
                try:
                    code = await self._supervise(child, started)
                except asyncio.CancelledError:
                    await self._terminate(child)
                    raise
                if code == EXIT_USAGE:
                    # Its command line or config is wrong: every restart would fail the
                    # same way, so stop here and fail each utterance with the reason.
                    failure = (
                        f"the local synthesizer refused its command line or config "
                        f"(exit code {code})"
                    )
                    await self._set_state(False, failure, given_up=True)
                    _LOGGER.error("%s; not restarting it", failure)
                    return
                if time.monotonic() - started > _STABLE:
                    backoff = _BACKOFF_MIN
                failure = f"the local synthesizer exited with code {code}"
                await self._set_state(False, failure)
                _LOGGER.error("%s; restarting in %.0f s", failure, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
        finally:
            self.close()

    def close(self) -> None:
        """Remove the private folder (the child, if any, is stopped by then)."""
        shutil.rmtree(self._folder, ignore_errors=True)

    async def aclose(self) -> None:
        """Close the channel and remove the private folder."""
        await self.channel.close()
        self.close()

    async def _supervise(self, child: asyncio.subprocess.Process, started: float) -> int:
        exited = asyncio.create_task(child.wait())
        answering = asyncio.create_task(self.channel.channel_ready())
        try:
            done, _ = await asyncio.wait(
                [exited, answering], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            answering.cancel()
        if answering in done:
            await self._set_state(True, None)
            _LOGGER.info("local synthesizer ready after %.1f s", time.monotonic() - started)
        elif exited not in done:
            _LOGGER.error(
                "the local synthesizer did not answer within %.0f s; waiting on", START_TIMEOUT
            )
        return await exited

    @staticmethod
    async def _terminate(child: asyncio.subprocess.Process) -> None:
        if child.returncode is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(child.wait()), STOP_TIMEOUT)
        except TimeoutError:
            _LOGGER.warning("the local synthesizer ignored SIGTERM; killing it")
            child.kill()
            await child.wait()


class LocalEngineClient:
    """Synthesis through the child: waits for it to be up (or back, after it died), or
    fails at once with why not."""

    def __init__(self, child: LocalEngineProcess, synthesizer: SpeechKitClient) -> None:
        self._child = child
        self._synthesizer = synthesizer

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        await self._child.wait_ready()
        return await self._synthesizer.synthesize(pieces, sink, choice)
