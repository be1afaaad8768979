"""The control socket: a Unix socket only the daemon that made it may remove.

Before anything else, the daemon claims its path: a live daemon there is named and left
alone, a stale socket from a killed one is replaced, and a path where no socket can be
made is reported in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
from pathlib import Path

import grpc

from player.control.server import PlayerService
from player.errors import ControlError
from player.generated.speechkit_player.control.v1 import control_pb2_grpc

_LOGGER = logging.getLogger(__name__)

MAX_PATH_BYTES = 107
"""The longest name a Unix socket may have on Linux (sun_path's 108 bytes, less the NUL)."""

SOCKET_MODE = 0o660
PROBE_TIMEOUT = 1.0
"""Seconds to wait for a daemon on the socket to accept the probe connection."""


def claim_socket(path: Path) -> None:
    """Make sure the daemon can serve on ``path`` before it opens anything else.

    Raises ControlError if a daemon already answers there (naming its PID when the
    kernel tells), if something other than a socket is in the way, or if no socket can
    be created there. A socket nobody listens on, left by a daemon that was killed, is
    removed. (grpc itself would silently unlink a live daemon's socket and bind over it.)
    """
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ControlError(
            f"cannot create the control socket {path}: the path is longer than the "
            f"{MAX_PATH_BYTES} bytes a Unix socket's name may have; set a shorter [control] socket"
        )
    staging = _staging(path)
    try:
        if _occupied(path):
            _remove_stale(path)
        if _occupied(staging):
            # Named with our PID: left by a daemon that crashed while starting, long ago.
            staging.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ControlError(f"cannot create the control socket {path}: {_reason(err)}") from None
    # Only the staging name is tried, never `path` itself: a socket made and removed there
    # could take the place of one a daemon starting at the same moment has just published.
    _try_bind(staging, path)


def _staging(path: Path) -> Path:
    """Where grpc creates the socket before it gets its real name (see ControlServer):
    beside it, and no longer than the default name, so a path that fits fits here too."""
    return path.with_name(f".skp-{os.getpid()}")


def _occupied(path: Path) -> bool:
    """Whether something is at ``path``; ControlError if it is not ours to replace."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not (stat.S_ISSOCK(mode) or stat.S_ISLNK(mode)):
        raise ControlError(f"{path} exists and is not a socket: remove it or set [control] socket")
    return True


def _remove_stale(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # nobody listens: stale
        except (TimeoutError, BlockingIOError):
            # A listener whose backlog is full is still a listener (a Unix socket says
            # so at once, with EAGAIN).
            raise ControlError(f"another daemon is already serving {path}") from None
        except OSError as err:
            raise ControlError(
                f"cannot tell whether a daemon is serving {path}: {_reason(err)}"
            ) from None
        else:
            pid = _peer_pid(probe)
            who = f"another daemon (PID {pid})" if pid else "another daemon"
            raise ControlError(f"{who} is already serving {path}")
    _LOGGER.info("removing stale control socket %s", path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _peer_pid(sock: socket.socket) -> int:
    """The PID of the process at the other end of a Unix socket, or 0 if unknown."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):  # AttributeError: no SO_PEERCRED on this platform
        return 0
    pid: int = struct.unpack("3i", creds)[0]
    return pid


def _try_bind(probe_path: Path, path: Path) -> None:
    """Create and remove a socket at ``probe_path``: fails the way grpc's bind would, but
    with the operating system's reason rather than grpc's."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(str(probe_path))
        except OSError as err:
            raise ControlError(f"cannot create the control socket {path}: {_reason(err)}") from None
        with contextlib.suppress(FileNotFoundError):
            probe_path.unlink()


def _publish(staging: Path, path: Path) -> None:
    """Give the socket at ``staging`` its real name ``path``, unless a daemon that
    started meanwhile took it."""
    try:
        try:
            os.link(staging, path)
        except FileExistsError:
            if _occupied(path):  # raises if it is not a socket
                _remove_stale(path)  # raises if it is live
            os.link(staging, path)
        except OSError:
            # A file system without hard links: a rename, which cannot tell if one
            # appeared since claim_socket looked, is the best left.
            os.replace(staging, path)
            return
        staging.unlink()
    except OSError as err:
        raise ControlError(f"cannot create the control socket {path}: {_reason(err)}") from None


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


class ControlServer:
    """Serves PlayerService on ``path`` (mode 0660), removing the socket when stopped.

    grpc unlinks whatever is at the path it bound when it stops, and that may by then be
    another daemon's socket. So grpc binds a staging name and the socket is then linked
    to ``path``; `stop` removes ``path`` only while it is still the socket made here.
    """

    def __init__(self, path: Path, service: PlayerService) -> None:
        self._path = path
        self._service = service
        self._server: grpc.aio.Server | None = None
        self._created: tuple[int, int] | None = None
        """(device, inode) of the socket made here: the only one `stop` may remove."""

    async def start(self) -> None:
        path, staging = self._path, _staging(self._path)
        claim_socket(path)
        server = grpc.aio.server()
        control_pb2_grpc.add_PlayerServicer_to_server(self._service, server)
        # Created 0600 under this umask, then opened up to the group: never world-writable,
        # not even for a moment.
        old_umask = os.umask(0o177)
        try:
            if server.add_insecure_port(f"unix:{staging}") == 0:
                raise ControlError(f"cannot listen on {path}")
            await server.start()
        except RuntimeError as err:
            raise ControlError(f"cannot listen on {path}: {err}") from err
        finally:
            os.umask(old_umask)
        self._server = server
        try:
            created = staging.lstat()
            self._created = (created.st_dev, created.st_ino)
            _publish(staging, path)
            os.chmod(path, SOCKET_MODE)
        except OSError as err:
            await self.stop(0)
            raise ControlError(f"cannot set up the control socket {path}: {_reason(err)}") from None
        except ControlError:
            await self.stop(0)
            raise
        _LOGGER.info("control socket: %s", path)

    async def stop(self, grace: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
        created, self._created = self._created, None
        if created is None:
            return
        # Someone may have removed ours by hand and started another daemon there.
        with contextlib.suppress(OSError):
            now = self._path.lstat()
            if (now.st_dev, now.st_ino) == created:
                self._path.unlink()
