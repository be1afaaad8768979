"""The SSIP sockets: the Unix socket speech-dispatcher's clients look for (or one of the
config's), and TCP when `[ssip] listen` asks for it.

With `socket = "auto"` the daemon serves speech-dispatcher's own path only while nothing
answers there: a live speech-dispatcher keeps it (one log line says so), a stale socket
left by a killed server is replaced, and the socket is removed on stop only if it is
still the one made here. Clients then find it first and never start a speech-dispatcher.
A socket "auto" cannot make is a warning, not a reason to stop speaking; a path of the
config's that cannot be served stops the start, as the control socket's does.

The socket is bound here, not by asyncio (which would remove whatever is at the path,
a speech-dispatcher that bound it a moment ago included): a path taken meanwhile fails
the bind instead. It is made 0600 and opened to the group (0660), as the control socket
is, in a folder of the user's alone (0700, speech-dispatcher's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from player.audio.ring import Frames
from player.config import SsipSettings
from player.errors import ControlError
from player.speech.requests import Speaker
from player.ssip.clients import Clients
from player.ssip.connection import LINE_BYTES, Connection
from player.ssip.voices import offered

_LOGGER = logging.getLogger(__name__)

SOCKET_MODE = 0o660
MAX_PATH_BYTES = 107
"""The longest name a Unix socket may have on Linux (sun_path's 108 bytes, less the NUL)."""
BACKLOG = 100
"""Connections waiting to be accepted: a burst of spd-say calls at once."""
PROBE_TIMEOUT_S = 1.0
"""Seconds a server on the socket has to accept the probe connection."""


def _bound(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, 0660; ControlError with the reason. Nothing
    awaits between the umask's change and its restoring, so no other file the daemon
    makes meanwhile gets it."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ControlError(
            f"cannot serve SSIP on {path}: the path is longer than a Unix socket's "
            f"{MAX_PATH_BYTES} bytes"
        )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))  # fails if a server took the path since it was probed
        finally:
            os.umask(old_umask)
        os.chmod(path, SOCKET_MODE)
        sock.listen(BACKLOG)
    except OSError as err:
        sock.close()
        raise ControlError(f"cannot serve SSIP on {path}: {err.strerror or err}") from None
    return sock


class SsipServer:
    """Serves SSIP on the configured sockets until cancelled."""

    def __init__(
        self,
        settings: SsipSettings,
        speaker: Speaker,
        voice: str,
        local_voices: list[str],
        icons: Mapping[str, Frames],
    ) -> None:
        """``voice``: the configured voice's name; ``local_voices``: [local] voices' names;
        ``icons``: `[ssip.sound_icons]` at the device's rate, by name."""
        self._settings = settings
        self._voice = voice
        self._icons = icons
        self._speaker = speaker
        self._voices = offered(local_voices)
        self.clients = Clients()
        self._servers: list[asyncio.Server] = []
        self._made: tuple[Path, tuple[int, int]] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; ControlError with the reason when a socket asked for cannot be served."""
        settings = self._settings
        if settings.socket is not None:
            try:
                await self._serve_unix(settings.socket)
            except ControlError as err:
                if not settings.auto:
                    raise
                _LOGGER.warning("%s; speech-dispatcher's clients are not served", err)
        if settings.listen:
            host, _, port = settings.listen.rpartition(":")
            try:
                server = await asyncio.start_server(
                    self._accept, host.strip("[]"), int(port), limit=LINE_BYTES
                )
            except OSError as err:
                raise ControlError(
                    f"cannot serve SSIP on {settings.listen}: {err.strerror or err}"
                ) from None
            self._servers.append(server)
            _LOGGER.info("SSIP on %s", settings.listen)

    async def run(self) -> None:
        """For the daemon's life: the clients' events."""
        await self.clients.relay(self._speaker.playback.events)

    async def aclose(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=1.0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        if self._made is not None:
            path, made = self._made
            self._made = None
            # Only ours: someone may have removed it and started a server there.
            with contextlib.suppress(OSError):
                now = path.lstat()
                if (now.st_dev, now.st_ino) == made:
                    path.unlink()

    async def _serve_unix(self, path: Path) -> None:
        if self._answering(path):
            if not self._settings.auto:
                raise ControlError(f"another server is already serving SSIP on {path}")
            _LOGGER.info("a speech-dispatcher already serves %s: SSIP clients keep using it", path)
            return
        sock = _bound(path)
        try:
            server = await asyncio.start_unix_server(self._accept, sock=sock, limit=LINE_BYTES)
        except OSError as err:
            sock.close()
            raise ControlError(f"cannot serve SSIP on {path}: {err.strerror or err}") from None
        made = os.lstat(path)
        self._servers.append(server)
        self._made = (path, (made.st_dev, made.st_ino))
        _LOGGER.info("SSIP socket: %s", path)

    def _answering(self, path: Path) -> bool:
        """A server answers at ``path``; a socket nobody listens on is removed."""
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return False
        except OSError as err:
            raise ControlError(f"cannot serve SSIP on {path}: {err.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{path} exists and is not a socket: remove it or set [ssip] socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(PROBE_TIMEOUT_S)
            try:
                probe.connect(str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                pass
            except (TimeoutError, BlockingIOError):
                return True  # a listener with a full backlog is still a listener
            except OSError as err:
                raise ControlError(
                    f"cannot tell whether a server is on {path}: {err.strerror}"
                ) from None
            else:
                return True
        _LOGGER.info("removing the stale SSIP socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            connection = Connection(
                reader, writer, self._speaker, self.clients, self._voices, self._voice, self._icons
            )
            await connection.serve()
        except Exception:
            # One client's trouble must not end the others' or the daemon's.
            _LOGGER.exception("SSIP connection failed")
        finally:
            self._connections.discard(task)
