"""The client commands stay light: `say` imports neither numpy nor sounddevice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TIMEOUT = 30.0
"""Seconds for one interpreter to import the CLI and fail to reach the daemon."""

SCRIPT = """
import json, sys
import player.cli
try:
    player.cli.main(["say", "--config", sys.argv[1], "hello"])
except SystemExit as exit:
    code = exit.code
heavy = [name for name in ("numpy", "sounddevice") if name in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_say_imports_neither_numpy_nor_sounddevice(tmp_path: Path) -> None:
    config = tmp_path / "player.toml"
    config.write_text(f'[control]\nsocket = "{tmp_path / "missing.sock"}"\n')
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # It ran the command to the end: the daemon is missing, which is a failure (1).
    assert report["code"] == 1, result.stderr
    assert "cannot reach the daemon" in result.stderr
    assert report["heavy"] == []
