"""The daemon: running, and answering `status` on its control socket."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from player.doctor.checks import Check, Findings, ok, problem

DAEMON = "daemon"
PROBE_TIMEOUT = 2.0
"""Seconds a listening socket may take to accept a connection."""
STATUS_TIMEOUT = 10.0
"""Seconds a running daemon may take to answer `status` (it answers at once)."""
START = "systemctl --user start speechkit-player, or run `speechkit-player daemon`"


async def daemon(found: Findings) -> Check:
    from player.control.client import Client
    from player.errors import ClientError

    path = found.settings.control.socket
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return problem(DAEMON, f"not running (no socket at {path})", START)
    except OSError as err:
        return problem(DAEMON, f"cannot look at {path}: {err.strerror}", START)
    if not stat.S_ISSOCK(mode):
        return problem(
            DAEMON, f"{path} is not a socket", "remove it, or set [control] socket elsewhere"
        )
    if not await _listening(path):
        return problem(
            DAEMON,
            f"not running: {path} is a stale socket (nobody listens; a daemon was killed)",
            START + " (it replaces the stale socket)",
        )
    try:
        async with Client(path) as client:
            status = await asyncio.wait_for(client.status(), STATUS_TIMEOUT)
    except ClientError as err:
        return problem(DAEMON, f"the daemon at {path} did not answer: {err}", _RESTART)
    except TimeoutError:
        return problem(
            DAEMON, f"the daemon at {path} did not answer within {STATUS_TIMEOUT:g} s", _RESTART
        )
    if status.device_state == "lost":
        return problem(
            DAEMON,
            f"running at {path}, but its audio device {status.device!r} is lost: "
            f"{status.last_error}",
            "bring the device or the sound server back (the daemon reopens it by itself)",
        )
    device = f"device {status.device!r} ({status.device_state or 'ok'})"
    return ok(DAEMON, f"running at {path}: {status.state}, {device}, endpoint {status.endpoint}")


_RESTART = "systemctl --user restart speechkit-player; see journalctl --user -u speechkit-player"


async def _listening(path: Path) -> bool:
    """Something accepts connections on the socket (or is too busy to, which is alive)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), PROBE_TIMEOUT)
    except TimeoutError:
        return True
    except OSError:
        return False
    writer.close()
    return True
