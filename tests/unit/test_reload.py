"""SIGHUP's reload: what is taken on live, what waits for a restart, what is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from player.config import Settings, load_settings
from player.errors import ChimeError
from player.reload import Reloader, changed_keys, needs_restart

pytestmark = pytest.mark.unit

ENV = {"HOME": "/nonexistent", "XDG_RUNTIME_DIR": "/tmp"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


class _Applied:
    def __init__(self, fail: Exception | None = None) -> None:
        self.seen: list[Settings] = []
        self.fail = fail

    def __call__(self, settings: Settings) -> None:
        if self.fail is not None:
            raise self.fail
        self.seen.append(settings)


def _reloader(tmp_path: Path, text: str, apply: _Applied) -> tuple[Reloader, Path]:
    path = _write(tmp_path / "player.toml", text)
    return Reloader(load_settings(path, ENV), apply, ENV), path


def test_a_voice_change_is_applied_and_the_running_settings_follow(tmp_path: Path) -> None:
    applied = _Applied()
    reloader, path = _reloader(tmp_path, '[voice]\nvoice = "marina"\n', applied)
    _write(path, '[voice]\nvoice = "alena"\nspeed = 1.5\n')

    assert reloader.reload()

    assert [s.voice.voice for s in applied.seen] == ["alena"]
    assert reloader.settings.voice.speed == 1.5


def test_an_invalid_config_is_reported_and_the_running_one_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    applied = _Applied()
    reloader, path = _reloader(tmp_path, '[voice]\nvoice = "marina"\n', applied)
    _write(path, '[voice]\nvoise = "alena"\n')

    with caplog.at_level(logging.ERROR, logger="player.reload"):
        assert not reloader.reload()

    assert applied.seen == []
    assert reloader.settings.voice.voice == "marina"
    assert len(caplog.records) == 1
    assert "running one is kept" in caplog.text
    assert 'did you mean "voice"' in caplog.text


def test_what_the_daemon_was_built_from_waits_for_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    applied = _Applied()
    reloader, path = _reloader(tmp_path, "[audio]\nbuffer_ms = 2000\n", applied)
    _write(path, '[audio]\nbuffer_ms = 3000\n[voice]\nvoice = "alena"\n')

    with caplog.at_level(logging.INFO, logger="player.reload"):
        assert reloader.reload()

    assert applied.seen[0].audio.buffer_ms == 2000
    assert applied.seen[0].voice.voice == "alena"
    assert "only after a restart: audio.buffer_ms" in caplog.text
    # Compared against what runs, the next reload still sees the pending change.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="player.reload"):
        assert reloader.reload()
    assert "only after a restart: audio.buffer_ms" in caplog.text


def test_an_apply_that_refuses_keeps_the_running_settings(tmp_path: Path) -> None:
    applied = _Applied(ChimeError("/x.wav is not a WAV file we can read"))
    reloader, path = _reloader(tmp_path, "", applied)
    _write(path, '[voice]\nvoice = "alena"\n')

    assert not reloader.reload()

    assert reloader.settings.voice.voice == "marina"


def test_changed_keys_name_secrets_without_their_values(tmp_path: Path) -> None:
    old = load_settings(_write(tmp_path / "a.toml", '[speechkit]\napi_key = "first-secret"\n'), ENV)
    new = load_settings(
        _write(tmp_path / "b.toml", '[speechkit]\napi_key = "second-secret"\n'), ENV
    )

    keys = changed_keys(old, new)

    assert keys == ["speechkit.api_key"]
    assert not needs_restart("speechkit.api_key")
    assert needs_restart("speechkit.endpoint")
    assert needs_restart("audio.device")
    assert needs_restart("mqtt.groups")
    assert needs_restart("mqtt.broker")
    assert not needs_restart("chimes.important")
