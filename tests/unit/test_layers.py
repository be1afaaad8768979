"""The layers import only what their `__init__` says they may: data flows one way, and a
client of the daemon never loads the daemon's audio side."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PLAYER = Path(__file__).resolve().parents[2] / "player"
IMPORT_TIMEOUT = 60.0

# Each layer and the layers (or single modules) it may import, besides itself. Keep in
# step with the docstrings of the layers' __init__.py.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "limits": set(),
    "systemd": set(),
    "reload": {"config", "errors"},
    "threads": set(),
    "config": {"errors", "limits"},
    "auth": {"config", "errors", "threads", "__version__"},
    "audio": {"config", "errors", "limits"},
    "synthesis": {"audio.ring", "auth", "config", "errors", "limits", "generated"},
    "speech": {"audio", "synthesis", "config", "errors", "limits"},
    "cache": {"synthesis.interface", "audio.ring", "config", "errors"},
    "control": {"speech", "audio", "synthesis", "cache", "config", "errors", "generated"},
    "local": {"speech.sentences", "config", "errors", "limits", "generated"},
    "metrics": {"speech", "audio", "config", "errors", "__version__"},
    "fleet": {
        "control.server",
        "control.views",
        "speech",
        "config",
        "errors",
        "generated",
        "__version__",
    },
    "ssip": {"speech", "audio.ring", "config", "errors", "limits"},
    "doctor": {
        "threads",
        "config",
        "errors",
        "limits",
        "audio",
        "auth",
        "synthesis",
        "local.engine",
        "control.client",
        "generated",
    },
}


def _imports(path: Path) -> set[str]:
    """The `player.` modules a file imports, without the prefix."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "player":
                names = [f"player.{alias.name}" for alias in node.names]
            found.update(n.removeprefix("player.") for n in names if n.startswith("player."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("player.") for a in node.names if a.name.startswith("player.")
            )
    return found


def _allowed(layer: str, target: str) -> bool:
    if target == layer or target.startswith(f"{layer}."):
        return True
    return any(target == ok or target.startswith(f"{ok}.") for ok in ALLOWED[layer])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_it_may(layer: str) -> None:
    folder = PLAYER / layer
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [PLAYER / f"{layer}.py"]
    wrong = {
        f"{path.relative_to(PLAYER)} imports player.{target}"
        for path in files
        for target in _imports(path)
        if not _allowed(layer, target)
    }
    assert not wrong, sorted(wrong)


def test_every_module_belongs_to_a_layer_or_an_edge() -> None:
    edges = {"__init__", "__main__", "cli", "cli_cache", "daemon"}
    tops = {p.stem for p in PLAYER.glob("*.py")} | {
        p.name for p in PLAYER.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert tops - edges - {"generated"} == set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_on_its_own(layer: str) -> None:
    """In a fresh interpreter, so an import cycle cannot hide behind an earlier import."""
    modules = [f"player.{layer}"]
    folder = PLAYER / layer
    if folder.is_dir():
        modules += [f"player.{layer}.{p.stem}" for p in sorted(folder.glob("[!_]*.py"))]
    script = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    subprocess.run(
        [sys.executable, "-c", script, *modules],
        check=True, timeout=IMPORT_TIMEOUT, capture_output=True,
    )  # fmt: skip
