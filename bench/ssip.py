"""Row 7: a program that speaks through speech-dispatcher's protocol, timed from its exec
to the daemon's first request on the wire, beside `speechkit-player say` doing the same.

Both speak the bench text through the daemon's SSIP socket or its control socket and
are stopped as soon as the request is out: what is timed is the client and the daemon's
request handling, not the speech."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time

from player.control.client import Client
from tests.harness.daemon import Daemon
from tests.harness.tone_server import ToneServer

SPD_SAY, CLI_SAY = "spd_say_wire_ms", "cli_say_wire_ms"
TIMEOUT = 30.0


async def exec_to_wire(
    daemon: Daemon, tone: ToneServer, socket: str, text: str, runs: int
) -> dict[str, list[float]]:
    """Milliseconds from exec to the first request on the wire, `runs` times each, for
    `spd-say` (SPEECHD_ADDRESS at ``socket``) and `speechkit-player say`."""
    if shutil.which("spd-say") is None:
        raise RuntimeError("spd-say is not installed: run scripts/setup --test")
    clients = {
        SPD_SAY: (["spd-say", text], {**daemon.env, "SPEECHD_ADDRESS": f"unix_socket:{socket}"}),
        CLI_SAY: (
            [sys.executable, "-m", "player", "say", "--config", str(daemon.config), text],
            daemon.env,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(runs):
        for name, (argv, env) in clients.items():
            calls = len(tone.calls)
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*argv, env=env)
            call = (await tone.wait_started(calls + 1, TIMEOUT))[calls]
            exit_code = await asyncio.wait_for(proc.wait(), TIMEOUT)
            async with Client(daemon.socket) as client:
                await client.stop()
            # Stopped, the call ends: by then the server has read its first request.
            await tone.wait_finished(call, TIMEOUT)
            if exit_code or call.first_request_at is None or call.first_request_at < started:
                raise RuntimeError(f"{argv[0]} failed, or its call was not the one timed")
            times[name].append((call.first_request_at - started) * 1000)
    return times
