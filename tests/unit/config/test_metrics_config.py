"""`[metrics]` in player.config.loader: off unless asked for, "host:port" when it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.config import MetricsSettings, load_settings
from player.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "player.toml"
ENV = {"XDG_RUNTIME_DIR": "/run/user/1000"}


def load(tmp_path: Path, text: str) -> MetricsSettings:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, ENV).metrics


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    assert load_settings(None, ENV).metrics == MetricsSettings(listen="")
    assert load(tmp_path, "[metrics]\n") == MetricsSettings()
    assert load(tmp_path, '[metrics]\nlisten = "  "\n') == MetricsSettings()


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "localhost:9464", "[::1]:9464"])
def test_listen_is_host_port(tmp_path: Path, listen: str) -> None:
    assert load(tmp_path, f'[metrics]\nlisten = " {listen} "\n').listen == listen


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1", ":9464", "host:0", "host:70000"])
def test_other_addresses_are_errors(tmp_path: Path, listen: str) -> None:
    assert errors_of(tmp_path, f'[metrics]\nlisten = "{listen}"\n') == [
        f'metrics.listen: expected "host:port", or "" for no metrics, found "{listen}"'
    ]


def test_metrics_errors_come_with_the_rest(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "[metrics]\nlisten = 9464\nport = 1\n[voice]\nspeed = 9\n")
    assert len(errors) == 3, errors
    assert any(e.startswith("metrics.listen: expected a string") for e in errors), errors
    assert 'unknown key [metrics] "port"; valid keys: listen' in errors, errors
    assert any(e.startswith("voice.speed") for e in errors), errors


def test_the_example_config_documents_metrics_and_leaves_them_off() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "\n[metrics]\n" in text
    assert '\n# listen = "127.0.0.1:9464"\n' in text
    assert load_settings(EXAMPLE, ENV).metrics == MetricsSettings()
