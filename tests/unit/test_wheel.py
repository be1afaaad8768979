"""The wheel holds the product and nothing of the tests: the tone server and the rest of
the harness are test fixtures, not something a user installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 120.0


def test_the_wheel_holds_the_package_and_no_test_code(tmp_path: Path) -> None:
    # A copy, so no stale build/ folder of a working tree can leak files into the wheel.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "player", source / "player", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)],
        check=True, timeout=BUILD_TIMEOUT, capture_output=True,
    )  # fmt: skip
    (wheel,) = out.glob("speechkit_player-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "player/cli.py" in names
    assert "player/local/server.py" in names
    assert "player/generated/speechkit/tts/v3/tts_pb2.pyi" in names
    top = {name.split("/")[0] for name in names}
    assert top == {"player", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert not [name for name in names if "tone" in name or "test" in name.split("/")[-1]]
