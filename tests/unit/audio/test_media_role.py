"""`[audio] media_role`: read and checked from the config, and put in the environment
variables libpulse and PipeWire's ALSA plugin read (an environment of the test's own, not
the test process's). That the sound server sees it is tests/e2e/test_media_role.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.audio.media_role import PIPEWIRE_VARIABLE, PULSE_VARIABLE, announce_role
from player.config import load_settings
from player.errors import ConfigError

ENV = {"HOME": "/home/test", "XDG_RUNTIME_DIR": "/run/user/1000"}


def role_in(tmp_path: Path, line: str) -> str:
    path = tmp_path / "player.toml"
    path.write_text(f"[audio]\n{line}\n")
    return load_settings(path, ENV).audio.media_role


def test_default_and_configured_roles(tmp_path: Path) -> None:
    assert load_settings(None, ENV).audio.media_role == "announcement"
    assert role_in(tmp_path, 'media_role = "Navigation"') == "Navigation"
    assert role_in(tmp_path, 'media_role = ""') == ""


@pytest.mark.parametrize(
    "line",
    [
        'media_role = "music\\" }"',
        'media_role = "two words"',
        'media_role = "' + "x" * 65 + '"',
    ],
)
def test_a_role_that_is_no_name_is_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        role_in(tmp_path, line)
    [error] = info.value.errors
    assert "media_role" in error
    assert "letters, digits" in error


def test_the_role_goes_to_both_sound_servers() -> None:
    environ = {"PATH": "/usr/bin"}
    announce_role("announcement", environ)
    assert environ == {
        "PATH": "/usr/bin",
        PULSE_VARIABLE: "announcement",
        PIPEWIRE_VARIABLE: '{ media.role = "announcement" }',
    }


def test_an_empty_role_changes_nothing() -> None:
    environ = {PULSE_VARIABLE: "event"}
    announce_role("", environ)
    assert environ == {PULSE_VARIABLE: "event"}


def test_pipewire_props_set_by_hand_are_kept() -> None:
    environ = {PIPEWIRE_VARIABLE: "{ node.latency = 256/48000 }"}
    announce_role("music", environ)
    assert environ == {
        PIPEWIRE_VARIABLE: "{ node.latency = 256/48000 }",
        PULSE_VARIABLE: "music",
    }
