"""`[cache]` in player.config.loader: on by default, in the folder systemd or XDG names."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.config import CacheSettings, load_settings
from player.errors import ConfigError

ENV = {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/kiosk"}


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> CacheSettings:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env or ENV).cache


def test_the_cache_is_on_by_default_under_the_users_cache_folder(tmp_path: Path) -> None:
    expected = CacheSettings(Path("/home/kiosk/.cache/speechkit-player/phrases"), 200)
    assert load_settings(None, ENV).cache == expected
    assert load(tmp_path, "[cache]\n") == expected
    assert expected.enabled


def test_xdg_cache_home_and_then_systemds_cache_directory_move_it(tmp_path: Path) -> None:
    xdg = {**ENV, "XDG_CACHE_HOME": "/var/tmp/xdg"}
    assert load(tmp_path, "", xdg).dir == Path("/var/tmp/xdg/speechkit-player/phrases")
    unit = {**xdg, "CACHE_DIRECTORY": "/home/kiosk/.cache/speechkit-player"}
    assert load(tmp_path, "", unit).dir == Path("/home/kiosk/.cache/speechkit-player/phrases")


def test_a_relative_dir_is_beside_the_config(tmp_path: Path) -> None:
    assert load(tmp_path, '[cache]\ndir = "phrases"\n').dir == tmp_path / "phrases"
    assert load(tmp_path, '[cache]\ndir = "~/p"\n').dir == Path("/home/kiosk/p")


def test_max_mb_zero_turns_it_off(tmp_path: Path) -> None:
    cache = load(tmp_path, "[cache]\nmax_mb = 0\n")
    assert not cache.enabled


def test_bad_values_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "player.toml"
    path.write_text('[cache]\nmax_mb = -1\ndir = ""\nmax_sz = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)
    assert info.value.errors == [
        "cache.dir: must not be empty",
        "cache.max_mb: -1 is out of range [0, 1000000]",
        'unknown key [cache] "max_sz"; did you mean "max_mb"?',
    ]
