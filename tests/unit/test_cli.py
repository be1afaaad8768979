"""player.cli: the parser (`-v` before or after the command, errors as one line) and what
`status` prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from player.cli import EXIT_USAGE, _parser
from player.control.views import status_dict
from player.generated.speechkit_player.control.v1 import control_pb2

COMMANDS = [
    ["daemon"],
    ["serve-local"],
    ["say", "hello"],
    ["stop"],
    ["cancel", "u1"],
    ["pause"],
    ["resume"],
    ["status"],
    ["devices"],
    ["events"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("before", "after", "verbose"),
    [([], [], False), (["-v"], [], True), ([], ["-v"], True), ([], ["--verbose"], True)],
    ids=["none", "v-first", "v-after", "verbose-after"],
)
def test_verbose_is_accepted_before_and_after_the_command(
    command: list[str], before: list[str], after: list[str], verbose: bool
) -> None:
    name, *rest = command
    args = _parser().parse_args([*before, name, *after, "--config", "c.toml", *rest])
    assert args.command == name
    assert args.verbose is verbose
    assert str(args.config) == "c.toml"


@pytest.mark.parametrize(
    "argv",
    [["status", "--bogus"], ["say"], ["nonsense"], [], ["say", "--priority", "loud", "hi"]],
    ids=["unknown-option", "missing-text", "unknown-command", "no-command", "bad-choice"],
)
def test_a_usage_error_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("speechkit-player: ")
    assert "--help" in lines[0]


def test_help_still_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["say", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: speechkit-player say")
    assert "--priority" in out


def test_status_shows_the_device_underruns_beside_ours() -> None:
    counters = control_pb2.Counters(underruns=2, device_underruns=5)
    shown = status_dict(control_pb2.Status(counters=counters))["counters"]
    assert isinstance(shown, dict)
    assert (shown["underruns"], shown["device_underruns"]) == (2, 5)


@pytest.mark.parametrize("journal", [True, False])
def test_log_lines_carry_a_timestamp_only_outside_journald(journal: bool) -> None:
    """journald stamps each line itself: a second stamp is noise in `journalctl`."""
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal:
        env["JOURNAL_STREAM"] = "8:12345"
    code = (
        "import logging; from player.cli import _log_to_stderr; "
        "_log_to_stderr(False); logging.getLogger('player.x').info('hello')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    line = done.stderr.strip()
    assert line.endswith("INFO player.x: hello")
    assert (line == "INFO player.x: hello") is journal
