"""`[ssip]` in player.config.loader: speech-dispatcher's own socket by default, "off",
a path, and TCP only when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.config import SsipSettings, load_settings
from player.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "player.toml"
ENV = {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/kiosk"}
STANDARD = Path("/run/user/1000/speech-dispatcher/speechd.sock")


def load(tmp_path: Path, text: str, env: dict[str, str] = ENV) -> SsipSettings:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env).ssip


def test_auto_is_the_default_and_serves_where_clients_look(tmp_path: Path) -> None:
    expected = SsipSettings(socket=STANDARD, auto=True)
    assert load_settings(None, ENV).ssip == expected
    assert load(tmp_path, '[ssip]\nsocket = "auto"\n') == expected
    assert load_settings(EXAMPLE, ENV).ssip == expected


def test_without_a_runtime_directory_auto_is_under_the_cache_directory(tmp_path: Path) -> None:
    settings = load(tmp_path, "[ssip]\n", {"HOME": "/home/kiosk"})
    assert settings.socket == Path("/home/kiosk/.cache/speech-dispatcher/speechd.sock")


def test_off_and_a_path_of_ones_own(tmp_path: Path) -> None:
    assert load(tmp_path, '[ssip]\nsocket = "off"\n') == SsipSettings()
    own = load(tmp_path, '[ssip]\nsocket = "run/ssip.sock"\nlisten = "127.0.0.1:6560"\n')
    assert own == SsipSettings(socket=tmp_path / "run/ssip.sock", listen="127.0.0.1:6560")


@pytest.mark.parametrize("listen", ["6560", "localhost", "host:99999"])
def test_listen_must_be_host_port(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'[ssip]\nlisten = "{listen}"\n')
    (error,) = info.value.errors
    assert error.startswith("ssip.listen: expected"), error


def test_a_misspelt_key_is_named_with_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, '[ssip]\nsockt = "off"\n')
    assert "socket" in str(info.value)


def test_sound_icons_name_wav_files_that_exist(tmp_path: Path) -> None:
    (tmp_path / "bell.wav").write_bytes(b"RIFF")
    text = '[ssip.sound_icons]\nBell = "bell.wav"\nmissing = "gone.wav"\nodd = 3\n'
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.errors == [
        f"ssip.sound_icons.missing: no WAV file at {tmp_path / 'gone.wav'}",
        "ssip.sound_icons.odd: expected a WAV file's path, found an integer",
    ]
    settings = load(tmp_path, '[ssip.sound_icons]\nBell = "bell.wav"\n')
    assert settings.sound_icons == (("bell", tmp_path / "bell.wav"),)
