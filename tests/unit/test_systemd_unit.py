"""The shipped user unit and its service-account drop-in: the sandbox settings are there,
and what the unit names (the command, the config, the socket's folder, the credential)
agrees with what the daemon does. If systemd-analyze is installed, systemd itself checks
both files as the user manager would load them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from player.config.credentials import ENV_VARS
from player.config.loader import default_config, load_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "speechkit-player.service"
DROP_IN = ROOT / "systemd" / "speechkit-player.service.d" / "service-account.conf"
TIMEOUT = 30.0

Unit = dict[str, list[tuple[str, str]]]


def parse(path: Path) -> Unit:
    """Sections to (key, value) pairs in file order. Unlike configparser's, keys repeat
    (systemd appends, or resets on an empty value) and `\\` continues a line."""
    unit: Unit = {}
    section: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], [])
            continue
        assert section is not None, f"{path}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {line!r}"
        section.append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    """Every word the key was given, after the last empty assignment (which resets it)."""
    found: list[str] = []
    for name, value in unit.get(section, []):
        if name == key:
            found = [] if not value else [*found, *value.split()]
    return found


def value(unit: Unit, section: str, key: str) -> str:
    assigned = [v for name, v in unit.get(section, []) if name == key]
    assert len(assigned) == 1, f"[{section}] {key}= set {len(assigned)} times"
    return assigned[0]


def expand(text: str, home: Path) -> str:
    """The user manager's specifiers, for a user whose folders are the XDG defaults."""
    for spec, path in {
        "%h": home,
        "%E": home / ".config",
        "%C": home / ".cache",
        "%t": home / "run",
        "%d": home / "run" / "credentials" / "speechkit-player.service",
    }.items():
        text = text.replace(spec, str(path))
    return text


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse(UNIT)


@pytest.fixture(scope="module")
def drop_in() -> Unit:
    return parse(DROP_IN)


def test_sandbox(unit: Unit) -> None:
    service = {key: value(unit, "Service", key) for key in _SANDBOX}
    assert service == _SANDBOX
    assert sorted(values(unit, "Service", "RestrictAddressFamilies")) == [
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
    ]
    assert values(unit, "Service", "ReadWritePaths") == ["%t"]
    assert values(unit, "Service", "CacheDirectory") == ["speechkit-player"]


_SANDBOX = {
    "NoNewPrivileges": "yes",
    # Without it a user manager cannot set up the mount namespace the next three need.
    "PrivateUsers": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
}


def test_notify_and_restart(unit: Unit) -> None:
    assert value(unit, "Service", "Type") == "notify"
    assert value(unit, "Service", "NotifyAccess") == "main"
    assert value(unit, "Service", "Restart") == "on-failure"
    assert values(unit, "Install", "WantedBy") == ["default.target"]


def test_the_command_is_the_daemon_on_the_default_config(unit: Unit, tmp_path: Path) -> None:
    """ExecStart runs the installed `speechkit-player daemon`, on the very config the CLI
    finds without --config (so `speechkit-player say` reaches the same daemon)."""
    words = expand(value(unit, "Service", "ExecStart"), tmp_path).split()
    assert Path(words[0]).name == "speechkit-player"
    assert Path(words[0]).parent == tmp_path / "speechkit-player" / ".venv" / "bin"
    assert words[1] == "daemon"
    config = Path(words[words.index("--config") + 1])
    config.parent.mkdir(parents=True)
    config.write_text("")
    assert default_config({"HOME": str(tmp_path)}) == config

    secrets = expand(value(unit, "Service", "EnvironmentFile"), tmp_path)
    assert secrets.startswith("-"), "a missing secrets file is the daemon's to report"
    assert Path(secrets[1:]).parent == config.parent

    done = subprocess.run(
        [sys.executable, "-m", "player", "daemon", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_what_the_daemon_writes_is_writable(unit: Unit, tmp_path: Path) -> None:
    """Under ProtectSystem=strict the default control socket must fall in ReadWritePaths."""
    runtime = Path(expand("%t", tmp_path))
    config = tmp_path / "player.toml"
    config.write_text("")
    settings = load_settings(config, {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)})
    writable = [Path(expand(p, tmp_path)) for p in values(unit, "Service", "ReadWritePaths")]
    assert any(settings.control.socket.is_relative_to(folder) for folder in writable)


def test_service_account_drop_in(drop_in: Unit, tmp_path: Path) -> None:
    """The credential the manager loads is the file the daemon is pointed at."""
    credential = value(drop_in, "Service", "LoadCredential")
    name, _, source = credential.partition(":")
    assert Path(expand(source, tmp_path)) == tmp_path / ".config" / "speechkit-player" / name
    variable, _, path = value(drop_in, "Service", "Environment").partition("=")
    assert variable in ENV_VARS
    assert path == f"%d/{name}"
    assert set(drop_in) == {"Service"}, "a drop-in adds to the unit, it does not redefine it"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit and drop-in as a user manager loads them: no unknown key, bad value or
    missing command (ExecStart's path must exist, so a stand-in is put there)."""
    home = tmp_path / "home"
    command = home / "speechkit-player" / ".venv" / "bin" / "speechkit-player"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    units = tmp_path / "units"
    shutil.copytree(UNIT.parent, units)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    done = subprocess.run(
        ["systemd-analyze", "verify", "--user", "--man=no", str(units / UNIT.name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Unknown keys are only warned about, on stderr, with exit code 0.
    assert done.stderr.strip() == "", done.stderr
