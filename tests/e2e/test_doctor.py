"""`speechkit-player doctor`, run as a user runs it, against a real sound server, the tone
server as SpeechKit and a real daemon, each broken in turn: every fault is one line that
names it and its fix, the checks after it still run, and the exit code says whether all
passed."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.e2e.common import KEY, RATE, closed_port, record_until, sound_ms
from tests.harness import audio_analysis as aa
from tests.harness.daemon import CliResult, Daemon, clean_env, run_cli, write_config
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tls import SelfSignedServer
from tests.harness.tone_server import ToneServer

NAMES = (
    "config",
    "sound server",
    "audio device",
    "test tone",
    "credentials",
    "dns",
    "tcp",
    "synthesis",
    "local voice",
    "daemon",
)
"""Every line's check, in the order doctor runs them ("tcp" is "tls" with tls = true)."""
WRONG_KEY = "sk-wrong-key-0a1b2c3d"
TONE_MS = 300


def report(result: CliResult) -> dict[str, tuple[str, str]]:
    """Check name -> (verdict, the rest of its line), after checking the shape: one line per
    check, in order, nothing on stderr, no traceback."""
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    found: dict[str, tuple[str, str]] = {}
    for line in lines:
        verdict, rest = line.split(None, 1)
        assert verdict in ("ok", "problem", "skipped"), line
        name = next(n for n in (*NAMES, "tls") if rest.startswith(n + " "))
        found[name] = (verdict, rest.removeprefix(name).strip())
    assert [n.replace("tls", "tcp") for n in found] == list(NAMES), result.stdout
    assert len(lines) == len(NAMES), result.stdout
    return found


def problems(found: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (verdict, _) in found.items() if verdict == "problem"}


async def doctor(config: Path, env: dict[str, str]) -> tuple[int, dict[str, tuple[str, str]]]:
    result = await run_cli(config, env, "doctor")
    return result.returncode, report(result)


async def test_all_is_well_and_the_tone_is_heard(
    daemon: Daemon, tone_server: ToneServer, recorder: Recorder
) -> None:
    code, found = await doctor(daemon.config, daemon.env)
    assert code == 0, found
    assert found.pop("local voice") == (
        "skipped",
        "not used (no local endpoint, no local fallback)",
    )
    assert {verdict for verdict, _ in found.values()} == {"ok"}, found
    assert f"at {pulse_env_server(daemon)}" in found["sound server"][1]
    assert f"{RATE} Hz" in found["audio device"][1]
    frames = RATE * TONE_MS // 1000
    assert f"{frames} frames counted by the callback" in found["test tone"][1]
    assert found["credentials"][1] == "api_key"
    assert "api_key accepted" in found["synthesis"][1]
    assert f"running at {daemon.socket}" in found["daemon"][1]
    # The tone really reached the speaker, and nothing of the one-word synthesis did.
    recording = await record_until(recorder, lambda x: sound_ms(x) >= TONE_MS * 0.8)
    spans = aa.sound_spans(recording, RATE)
    assert len(spans) == 1, spans
    start, end = spans[0]
    assert abs(aa.dominant_frequency(recording[start:end], RATE) - 440) < 10
    calls = await tone_server.wait_calls(1, 10.0)
    assert calls[0].texts == ["test"]
    assert calls[0].metadata["authorization"] == f"Api-Key {KEY}"


async def test_a_missing_sound_server(tmp_path: Path, tone_server: ToneServer) -> None:
    dead = tmp_path / "native"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # a socket file nobody listens on: a sound server that died
    env = {**clean_env(dict(os.environ)), "PULSE_SERVER": f"unix:{dead}"}
    config = write_config(tmp_path, tone_server.address, api_key=KEY)
    code, found = await doctor(config, env)
    assert code == 1
    verdict, line = found["sound server"]
    assert verdict == "problem"
    assert f"cannot connect to PulseAudio at unix:{dead} (from PULSE_SERVER)" in line
    assert "Connection refused" in line
    assert "fix: start PulseAudio or PipeWire" in line
    assert found["audio device"] == ("skipped", "needs the sound server")
    assert found["test tone"] == ("skipped", "needs the audio device")
    # The rest still ran.
    assert found["synthesis"][0] == "ok"
    assert problems(found) == {"sound server", "daemon"}


async def test_a_wrong_key(pulse: PulseServer, tmp_path: Path, tone_server: ToneServer) -> None:
    config = write_config(tmp_path, tone_server.address, api_key=WRONG_KEY)
    result = await run_cli(config, clean_env(pulse.env), "doctor")
    assert WRONG_KEY not in result.stdout + result.stderr
    found = report(result)
    assert result.returncode == 1
    assert problems(found) == {"synthesis", "daemon"}
    assert found["credentials"] == ("ok", "api_key")
    line = found["synthesis"][1]
    assert line.startswith("credentials rejected (UNAUTHENTICATED: "), line
    assert "fix: check the API key in YANDEX_API_KEY" in line


async def test_an_unreachable_endpoint(pulse: PulseServer, tmp_path: Path) -> None:
    endpoint = closed_port()
    config = write_config(tmp_path, endpoint, api_key=KEY)
    code, found = await doctor(config, clean_env(pulse.env))
    assert code == 1
    assert problems(found) == {"tcp", "daemon"}
    line = found["tcp"][1]
    assert line.startswith(f"{endpoint} refused the connection"), line
    assert "fix: check [speechkit] endpoint" in line
    assert found["synthesis"] == ("skipped", "needs the tcp connection")
    assert found["test tone"][0] == "ok"


async def test_no_daemon_and_a_stale_socket(
    pulse: PulseServer, tmp_path: Path, tone_server: ToneServer
) -> None:
    config = write_config(tmp_path, tone_server.address, api_key=KEY)
    env = clean_env(pulse.env)
    code, found = await doctor(config, env)
    assert code == 1
    assert problems(found) == {"daemon"}, found
    line = found["daemon"][1]
    assert line.startswith(f"not running (no socket at {tmp_path / 'control.sock'})"), line
    assert "fix: systemctl --user start speechkit-player" in line
    # Everything before it ran, and passed.
    assert found["test tone"][0] == found["synthesis"][0] == "ok"

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "control.sock"))  # left by a daemon that was killed
    code, found = await doctor(config, env)
    assert code == 1
    assert problems(found) == {"daemon"}
    assert "is a stale socket (nobody listens" in found["daemon"][1]


async def test_an_invalid_config_is_the_first_line(tmp_path: Path) -> None:
    config = tmp_path / "player.toml"
    config.write_text('[speechkit]\nendpont = "x"\n[audio]\nblock_ms = "ten"\n')
    result = await run_cli(config, clean_env(dict(os.environ)), "doctor")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("problem  config ") for line in lines[:2]), lines
    assert "endpont" in "".join(lines[:2]), lines
    assert "block_ms" in "".join(lines[:2]), lines
    assert all(f"fix: edit {config}" in line for line in lines[:2])
    rest = lines[2:]
    assert len(rest) == len(NAMES) - 1
    assert all(line.startswith("skipped") for line in rest), rest
    assert all(line.endswith("the config is invalid") for line in rest), rest


def pulse_env_server(daemon: Daemon) -> str:
    return daemon.env["PULSE_SERVER"]


async def test_a_certificate_the_system_does_not_trust(pulse: PulseServer, tmp_path: Path) -> None:
    async with SelfSignedServer(tmp_path) as server:
        config = write_config(tmp_path, server.address, api_key=KEY, speechkit={"tls": True})
        result = await run_cli(config, clean_env(pulse.env), "doctor")
    lines = {line.split(None, 2)[1]: line for line in result.stdout.splitlines()}
    assert result.returncode == 1
    assert lines["tls"].startswith(f"problem  tls           {server.address}: certificate not "), (
        result.stdout
    )
    assert "self-signed certificate" in lines["tls"]
    assert "fix: check the system clock" in lines["tls"]
    assert lines["synthesis"].startswith("skipped  synthesis     needs the tls connection")


async def test_tls_to_a_plaintext_server(
    pulse: PulseServer, tmp_path: Path, tone_server: ToneServer
) -> None:
    config = write_config(tmp_path, tone_server.address, api_key=KEY, speechkit={"tls": True})
    result = await run_cli(config, clean_env(pulse.env), "doctor")
    lines = {line.split(None, 2)[1]: line for line in result.stdout.splitlines()}
    assert result.returncode == 1
    assert "TLS handshake failed" in lines["tls"], result.stdout
    assert "fix: set [speechkit] tls = false only for a plaintext local server" in lines["tls"]


async def test_the_local_voice_loads(pulse: PulseServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, None, api_key=None)  # the cloud, without a key
    code, found = await doctor(config, clean_env(pulse.env))
    assert code == 1
    assert problems(found) == {"daemon"}, found
    verdict, line = found["local voice"]
    assert verdict == "ok"
    assert line.startswith("en_US-joe-medium (22050 Hz) loaded in "), line
    assert line.endswith("(no credentials for the cloud)")
    assert found["credentials"][0] == found["synthesis"][0] == "skipped"
    assert found["synthesis"][1] == "not used: speech goes to the local synthesizer"


async def test_a_local_voice_that_will_not_load(
    pulse: PulseServer, tmp_path: Path, broken_model: Path
) -> None:
    model = broken_model
    config = write_config(tmp_path, "local", api_key=None, local={"model": str(model)})
    code, found = await doctor(config, clean_env(pulse.env))
    assert code == 1
    assert problems(found) == {"local voice", "daemon"}, found
    line = found["local voice"][1]
    assert line.startswith(f"cannot load the Piper voice {model}"), line
    assert "fix: point [local] model" in line
