"""Regenerate player/generated/ from protos/.

Run with the project's virtualenv: ``.venv/bin/python scripts/gen_protos.py``.
``--out DIR`` writes elsewhere; the staleness test uses it to compare with the
committed files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "player.generated"
# protoc writes absolute imports named after the proto paths; they must point into
# our sub-package instead so the generated code needs no sys.path tricks.
_IMPORT = re.compile(r"^(from|import) (speechkit(?:_player)?)\b", re.MULTILINE)


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in sorted(out.rglob("*.py*")):
        text = _IMPORT.sub(rf"\1 {PACKAGE}.\2", path.read_text())
        path.write_text(text)
    for folder in [out, *sorted(p for p in out.rglob("*") if p.is_dir())]:
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "player" / "generated")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
