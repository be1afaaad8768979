"""The README's runnable examples, loaded as modules (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

LLM_SPEAK = Path(__file__).resolve().parents[2] / "examples" / "llm_speak.py"
"""The README's LLM example."""


def load(path: Path) -> ModuleType:
    """The example at ``path``, imported without running its ``main``."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
