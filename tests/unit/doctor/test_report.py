"""The doctor's lines, its verdict, its order, and the checks it skips and why."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from player.config import load_settings
from player.doctor import cloud, local, sound
from player.doctor.checks import Check, Findings, ok, problem, skipped
from player.doctor.run import STEPS, passed, run_checks
from player.threads import in_thread

WAIT = 5.0
"""Seconds a bounded wait in these tests may take."""


def test_a_line_is_verdict_name_detail_and_fix() -> None:
    line = problem("sound server", "cannot connect\n  at unix:/x", "start it").line()
    assert line == "problem  sound server  cannot connect at unix:/x — fix: start it"
    assert ok("dns", "a -> b").line() == "ok       dns           a -> b"
    assert skipped("tls", "not used").line() == "skipped  tls           not used"


def test_as_json_keeps_the_fields() -> None:
    check = problem("daemon", "not running", "start it")
    assert check.as_dict() == {
        "check": "daemon",
        "verdict": "problem",
        "detail": "not running",
        "fix": "start it",
    }


def test_only_a_problem_fails() -> None:
    assert passed([ok("a", ""), skipped("b", "not used")])
    assert not passed([ok("a", ""), problem("b", "", ""), skipped("c", "")])


async def _all(config: Path | None, environ: dict[str, str]) -> list[Check]:
    return [check async for check in run_checks(config, environ)]


async def test_an_invalid_config_comes_first_and_skips_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "player.toml"
    config.write_text('[audio]\nsamplerate = "fast"\nchanels = 2\n')
    checks = await _all(config, {})
    assert [c.name for c in checks[:2]] == ["config", "config"]
    assert all(c.verdict == "problem" and c.fix == f"edit {config}" for c in checks[:2])
    assert "chanels" in checks[0].detail + checks[1].detail
    assert [c.name for c in checks[2:]] == [name for name, _ in STEPS]
    assert {(c.verdict, c.detail) for c in checks[2:]} == {("skipped", "the config is invalid")}
    assert not passed(checks)


def test_the_order_is_sound_cloud_local_daemon() -> None:
    assert [name for name, _ in STEPS] == [
        "sound server",
        "audio device",
        "test tone",
        "credentials",
        "dns",
        "tls",
        "synthesis",
        "local voice",
        "daemon",
    ]


def _findings(tmp_path: Path, toml: str, **found: object) -> Findings:
    config = tmp_path / "player.toml"
    config.write_text(toml)
    findings = Findings(load_settings(config, {}), {})
    for name, value in found.items():
        setattr(findings, name, value)
    return findings


async def test_the_device_and_tone_wait_for_the_sound_server(tmp_path: Path) -> None:
    found = _findings(tmp_path, "", sound_server_failed=True)
    assert await sound.audio_device(found) == skipped("audio device", "needs the sound server")
    assert await sound.test_tone(found) == skipped("test tone", "needs the audio device")


async def test_no_sound_server_is_a_problem_only_for_a_pulse_device(tmp_path: Path) -> None:
    alsa = _findings(tmp_path, '[audio]\ndevice = "hw:0,0"\n')
    check = await sound.sound_server(alsa)
    assert check.verdict == "skipped"
    assert "PortAudio plays through ALSA directly" in check.detail
    pulse = _findings(tmp_path, '[audio]\ndevice = "pulse"\n')
    check = await sound.sound_server(pulse)
    assert check.verdict == "problem"
    assert "XDG_RUNTIME_DIR not set" in check.detail
    assert "XDG_RUNTIME_DIR=/run/user/" in check.fix
    assert pulse.sound_server_failed


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PULSE_SERVER": "unix:/run/p/native"}, ("PULSE_SERVER", "unix:/run/p/native")),
        ({"PULSE_SERVER": "{abc}tcp:host:4713 unix:/x"}, ("PULSE_SERVER", "tcp:host:4713")),
        ({"XDG_RUNTIME_DIR": "/nonexistent-runtime"}, None),
        ({}, None),
    ],
)
def test_the_pulse_address(environ: dict[str, str], expected: tuple[str, str] | None) -> None:
    assert sound.pulse_address(environ) == expected


def test_the_pulse_socket_in_the_runtime_dir(tmp_path: Path) -> None:
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").touch()
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert sound.pulse_address(environ) == ("XDG_RUNTIME_DIR", f"unix:{tmp_path}/pulse/native")


async def test_the_cloud_checks_are_not_used_by_the_local_endpoint(tmp_path: Path) -> None:
    found = _findings(tmp_path, '[speechkit]\nendpoint = "local"\n')
    assert (await cloud.credentials(found)).verdict == "skipped"
    for check in (cloud.dns, cloud.connection, cloud.synthesis):
        result = await check(found)
        assert result.verdict == "skipped"
        assert result.detail == "not used: speech goes to the local synthesizer"
    assert local.used(found) == 'endpoint = "local"'


async def test_no_key_for_the_cloud_speaks_locally(tmp_path: Path) -> None:
    found = _findings(tmp_path, "")
    check = await cloud.credentials(found)
    assert check.verdict == "skipped"
    assert check.detail.startswith("none: speech goes to the local synthesizer")
    assert local.used(found) == "no credentials for the cloud"


async def test_the_synthesis_waits_for_the_connection(tmp_path: Path) -> None:
    toml = '[speechkit]\nendpoint = "127.0.0.1:9"\ntls = false\napi_key = "k"\n'
    found = _findings(tmp_path, toml)
    assert (await cloud.credentials(found)).verdict == "ok"
    assert await cloud.connection(found) == skipped("tcp", "needs the endpoint's address")
    assert await cloud.synthesis(found) == skipped("synthesis", "needs the tcp connection")
    assert local.used(found) == ""
    assert (await local.local_voice(found)).verdict == "skipped"


async def test_a_wait_in_a_thread_is_bounded() -> None:
    release = threading.Event()
    with pytest.raises(TimeoutError):
        await in_thread(lambda: release.wait(WAIT), 0.01)
    release.set()
    assert await in_thread(lambda: 42, WAIT) == 42

    def fails() -> None:
        raise OSError("no device")

    with pytest.raises(OSError, match="no device"):
        await in_thread(fails, WAIT)
    await asyncio.sleep(0)
