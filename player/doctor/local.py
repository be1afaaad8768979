"""The local voice: Piper installed, and the configured voices loading.

They load in a child process (``python -m player.doctor.local [CONFIG]``, this module):
onnxruntime and the model stay out of the doctor, and a load that hangs is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from player.config.settings import LOCAL
from player.doctor.checks import Check, Findings, ok, problem, skipped

LOCAL_VOICE = "local voice"
LOAD_TIMEOUT = 120.0
"""Seconds the child may take to load every configured voice (a few each, usually)."""
INSTALL = "pip install 'speechkit-player[local]' (in a checkout: scripts/setup)"


def used(found: Findings) -> str:
    """Why the local synthesizer speaks here; "" when it does not."""
    sk = found.settings.speechkit
    if sk.endpoint == LOCAL:
        return 'endpoint = "local"'
    if sk.fallback == "local":
        return 'fallback = "local"'
    if found.credentials is None and not found.credentials_failed and sk.uses_local:
        return "no credentials for the cloud"
    return ""


async def local_voice(found: Findings) -> Check:
    from player.local.engine import missing_packages

    why = used(found)
    if not why:
        return skipped(LOCAL_VOICE, "not used (no local endpoint, no local fallback)")
    missing = missing_packages(found.settings.local)
    if missing:
        return problem(
            LOCAL_VOICE, f"Piper is not installed (missing: {', '.join(missing)})", INSTALL
        )
    source = found.settings.source
    command = [sys.executable, "-m", "player.doctor.local", *([str(source)] if source else [])]
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=dict(found.environ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    started = time.monotonic()
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LOAD_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return problem(
            LOCAL_VOICE,
            f"the voice did not load within {LOAD_TIMEOUT:g} s",
            "check the [local] model files, and free memory (a voice takes ~100 MB)",
        )
    took = time.monotonic() - started
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"]
        return problem(
            LOCAL_VOICE,
            lines[-1],
            "point [local] model (and [local.voices]) at a Piper .onnx with its .onnx.json, "
            "or reinstall: " + INSTALL,
        )
    voices = ", ".join(out.decode(errors="replace").split("\n")[:-1]) or "?"
    return ok(LOCAL_VOICE, f"{voices} loaded in {took:.1f} s ({why})")


def _main(argv: list[str]) -> int:
    """Load the voices the config names; print one "name (rate Hz)" line each."""
    from player.config import load_settings
    from player.errors import PlayerError
    from player.local.engine import PiperEngine

    try:
        settings = load_settings(Path(argv[0]) if argv else None, os.environ)
        engine = PiperEngine(settings.local)
    except PlayerError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    loaded = [engine.default, *(engine.voice(name) for name in sorted(engine.voice_names))]
    for voice in {voice.name: voice for voice in loaded}.values():
        sys.stdout.write(f"{voice.name} ({voice.rate} Hz)\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
