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
from pathlib import Path

import grpc

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT = 120.0
"""Seconds the child may take to load its voices before we call the start failed."""
STOP_TIMEOUT = 3.0
_BACKOFF_MIN, _BACKOFF_MAX = 1.0, 30.0
_STABLE = 60.0
"""A child that ran this long resets the restart backoff."""


def _runtime_dir() -> str | None:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime if runtime and os.path.isdir(runtime) else None


class LocalSynthesizer:
    """Runs and supervises `speechkit-player serve-local` on a socket only we can reach."""

    def __init__(self, config: Path | None, verbose: bool = False) -> None:
        self._config = config
        self._verbose = verbose
        # mkdtemp makes the folder 0700: nobody else can reach the socket inside.
        self._folder = Path(tempfile.mkdtemp(prefix="speechkit-player-", dir=_runtime_dir()))
        self.address = f"unix:{self._folder / 'local.sock'}"
        """Where to dial it."""
        self.ready = asyncio.Event()
        """Set while a child is up and answering."""

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "player", "serve-local"]
        command += ["--listen", self.address, "--exit-with-stdin"]
        if self._config is not None:
            command += ["--config", str(self._config)]
        return command + (["--verbose"] if self._verbose else [])

    async def run(self, channel: grpc.aio.Channel) -> None:
        """Start the child and restart it whenever it exits, until cancelled."""
        backoff = _BACKOFF_MIN
        # The child needs no cloud credentials: keep them out of its environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("YANDEX_")}
        try:
            while True:
                started = time.monotonic()
                child = await asyncio.create_subprocess_exec(
                    *self.command(), stdin=subprocess.PIPE, env=env
                )
                try:
                    code = await self._supervise(child, channel, started)
                except asyncio.CancelledError:
                    await self._terminate(child)
                    raise
                self.ready.clear()
                if time.monotonic() - started > _STABLE:
                    backoff = _BACKOFF_MIN
                _LOGGER.error(
                    "the local synthesizer exited (code %s); restarting in %.0f s", code, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
        finally:
            self.close()

    def close(self) -> None:
        """Remove the private folder (the child, if any, is stopped by then)."""
        shutil.rmtree(self._folder, ignore_errors=True)

    async def _supervise(
        self, child: asyncio.subprocess.Process, channel: grpc.aio.Channel, started: float
    ) -> int:
        exited = asyncio.create_task(child.wait())
        answering = asyncio.create_task(channel.channel_ready())
        try:
            done, _ = await asyncio.wait(
                [exited, answering], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            answering.cancel()
        if answering in done:
            self.ready.set()
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
