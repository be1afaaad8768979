"""`[mqtt]` in player.config.loader: off unless a broker is named, every problem reported
at once, the password read from its file and never shown."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from player.config import MqttSettings, Secret, load_settings
from player.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "player.toml"
ENV = {"XDG_RUNTIME_DIR": "/run/user/1000"}


def load(tmp_path: Path, text: str) -> MqttSettings:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, ENV).mqtt


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_mqtt_is_off_by_default_and_in_the_example() -> None:
    assert not load_settings(None, ENV).mqtt.enabled
    assert not load_settings(EXAMPLE, ENV).mqtt.enabled


def test_defaults_with_a_broker(tmp_path: Path) -> None:
    mqtt = load(tmp_path, '[mqtt]\nbroker = "broker.local"\n')
    assert mqtt.enabled
    assert not mqtt.tls
    assert mqtt.address == ("broker.local", 1883)
    assert mqtt.client_id == socket.gethostname()
    assert mqtt.prefix == "speechkit-player"
    assert mqtt.groups == ()
    assert mqtt.username == ""
    assert mqtt.password is None
    assert mqtt.homeassistant is False


@pytest.mark.parametrize(
    ("broker", "address", "tls"),
    [
        ("10.0.0.5:1884", ("10.0.0.5", 1884), False),
        ("mqtt://b.example:1999", ("b.example", 1999), False),
        ("mqtts://b.example", ("b.example", 8883), True),
        ("mqtts://b.example:443", ("b.example", 443), True),
        ("[::1]:1883", ("::1", 1883), False),
    ],
)
def test_broker_forms(tmp_path: Path, broker: str, address: tuple[str, int], tls: bool) -> None:
    mqtt = load(tmp_path, f'[mqtt]\nbroker = "{broker}"\n')
    assert mqtt.address == address
    assert mqtt.tls is tls


def test_every_key_is_read(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "password").write_text("s3cret-pass\n")
    mqtt = load(
        tmp_path,
        "[mqtt]\n"
        'broker = "mqtts://b.example:8883"\n'
        'ca_file = "ca.pem"\n'
        'username = "kiosk"\n'
        'password_file = "password"\n'
        'client_id = "lobby-east"\n'
        'prefix = "museum/paris"\n'
        'groups = ["lobby", "floor-2", "lobby"]\n'
        "homeassistant = true\n",
    )
    assert mqtt.ca_file == tmp_path / "ca.pem"
    assert mqtt.username == "kiosk"
    assert mqtt.password == Secret("s3cret-pass")
    assert mqtt.client_id == "lobby-east"
    assert mqtt.prefix == "museum/paris"
    assert mqtt.groups == ("lobby", "floor-2")  # a repeat taken once
    assert mqtt.homeassistant is True
    assert "s3cret" not in repr(mqtt)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        "[mqtt]\n"
        'broker = "http://b:1883"\n'
        'ca_file = "missing.pem"\n'
        'client_id = "a/b"\n'
        'prefix = "x/+/y"\n'
        'groups = ["ok", "#"]\n'
        "homeassistant = 1\n"
        "colour = 3\n",
    )
    assert len(errors) == 7, errors
    joined = "\n".join(errors)
    for key in ("broker", "ca_file", "client_id", "prefix", "groups", "homeassistant", "colour"):
        assert key in joined


@pytest.mark.parametrize(
    "broker", ["b:0", "b:70000", "b:port", ":1883", "ws://b:80", "b/path", "mqtt://"]
)
def test_a_bad_broker_is_refused(tmp_path: Path, broker: str) -> None:
    (error,) = errors_of(tmp_path, f'[mqtt]\nbroker = "{broker}"\n')
    assert "broker" in error
    assert broker in error


def test_a_ca_file_needs_tls(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    (error,) = errors_of(tmp_path, '[mqtt]\nbroker = "b:1883"\nca_file = "ca.pem"\n')
    assert 'only used with an "mqtts://" broker' in error


@pytest.mark.parametrize(
    ("content", "why"), [(b"", "is empty"), (b"\n  \n", "is empty"), (b"\xff\xfe", "not UTF-8")]
)
def test_a_bad_password_file_is_refused_without_its_content(
    tmp_path: Path, content: bytes, why: str
) -> None:
    (tmp_path / "password").write_bytes(content)
    (error,) = errors_of(tmp_path, '[mqtt]\nbroker = "b"\npassword_file = "password"\n')
    assert "password_file" in error
    assert why in error


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, '[mqtt]\nbroker = "b"\npassword_file = "nope"\n')
    assert f"no file at {tmp_path / 'nope'}" in error


@pytest.mark.parametrize("groups", ['"lobby"', "[1]", '["a/b"]', '[""]', f'["{"g" * 129}"]'])
def test_bad_groups_are_refused(tmp_path: Path, groups: str) -> None:
    (error,) = errors_of(tmp_path, f'[mqtt]\nbroker = "b"\ngroups = {groups}\n')
    assert "groups" in error


@pytest.mark.parametrize("prefix", ['""', '"a//b"', '"/a"', '"a/#"'])
def test_bad_prefixes_are_refused(tmp_path: Path, prefix: str) -> None:
    (error,) = errors_of(tmp_path, f'[mqtt]\nbroker = "b"\nprefix = {prefix}\n')
    assert "prefix" in error
