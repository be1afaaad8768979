"""End to end, issue 13: credentials that renew. Real daemons speak to the tone server,
which accepts only tokens the IAM stand-in (tests/harness/iam_server.py) issued and that
have not expired; the daemon gets them with a service account's authorized key, from the
metadata service, or from a token file someone else rewrites."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from player import __version__
from player.auth.http import USER_AGENT
from tests.e2e.common import (
    RATE,
    TIMEOUT,
    heard_and_quiet,
    record_until,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons, clean_env, run_cli, write_config
from tests.harness.iam_server import BearerCheck, GeneratedKey, IamServer
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import CallRecord, ToneScript, ToneServer

TEXT = "Hello there, service account."
SHORT_S = 0.5
"""Seconds of tone TEXT is at least (40 ms per character)."""
SENTENCE = "Sentence {:04d} is here, and it keeps the speaker talking for a while. "
LONG_TEXT = "".join(SENTENCE.format(n) for n in range(175))
"""Over 12000 characters: three calls, 12 s of tone at 1 ms per character."""
PLAY_TIMEOUT = 90.0
"""Seconds for LONG_TEXT: 12 s of audio, produced at 1.5x real time."""
SHORT_LIFETIME_S = 2.0
"""Seconds the IAM stand-in's tokens live in the renewal test: shorter than the time
between two of LONG_TEXT's calls, so no one token can speak all of it."""


@pytest.fixture(scope="module")
def made_key() -> GeneratedKey:
    return GeneratedKey.generate()


@pytest.fixture
def iam(made_key: GeneratedKey) -> Iterator[IamServer]:
    with IamServer() as server:
        server.register(made_key)
        yield server


@pytest.fixture
def tone_script(iam: IamServer) -> ToneScript:
    return ToneScript(credentials=BearerCheck(iam.valid))


@pytest.fixture
def key_file(made_key: GeneratedKey, tmp_path: Path) -> Path:
    return made_key.write(tmp_path / "sa-key.json")


def key_settings(key_file: Path, iam: IamServer) -> dict[str, object]:
    return {"service_account_key_file": str(key_file), "iam_endpoint": iam.url}


async def say(daemon: Daemon, text: str) -> None:
    result = await run_cli(daemon.config, daemon.env, "say", "--wait", text)
    assert result.returncode == 0, result.stderr


async def heard(recorder: Recorder, start: int, seconds: float) -> None:
    await record_until(recorder, heard_and_quiet(seconds, since=start))


def bearer(call: CallRecord) -> str:
    scheme, _, token = call.metadata.get("authorization", "").partition(" ")
    assert scheme == "Bearer", scheme
    return token


async def assert_no_secret_shows(daemon: Daemon, secrets: list[str]) -> None:
    assert daemon.proc is not None
    raw = await asyncio.to_thread(Path(f"/proc/{daemon.proc.pid}/cmdline").read_bytes)
    cmdline = raw.decode(errors="replace")
    status = await run_cli(daemon.config, daemon.env, "status")
    assert status.returncode == 0, status.stderr
    places = {"log": daemon.log, "status": status.stdout, "cmdline": cmdline}
    for where, text in places.items():
        shown = [secret[:12] + "..." for secret in secrets if secret in text]
        assert not shown, f"secrets in the daemon's {where}: {shown}"


def secrets_of(iam: IamServer, made_key: GeneratedKey) -> list[str]:
    found = [*iam.issued, *iam.jwts, *made_key.pem_body()]
    assert iam.issued, "nothing to look for"
    assert iam.jwts, "nothing to look for"
    return found


async def test_a_daemon_with_only_a_service_account_key_speaks(
    tone_server: ToneServer,
    pulse: PulseServer,
    recorder: Recorder,
    iam: IamServer,
    made_key: GeneratedKey,
    key_file: Path,
    tmp_path: Path,
) -> None:
    # Verbose: what the daemon logs at debug level must not give a secret away either.
    folder = tmp_path / "verbose"
    folder.mkdir()
    config = write_config(
        folder, tone_server.address, api_key=None, speechkit=key_settings(key_file, iam)
    )
    daemon = Daemon(config, clean_env(pulse.env), ["-v", "daemon", "--config", str(config)])
    await daemon.start()
    try:
        start = recorder.sample_count()
        await say(daemon, TEXT)
        await heard(recorder, start, SHORT_S)

        (call,) = await tone_server.wait_calls(1, 30.0)
        assert iam.valid(bearer(call))
        assert call.metadata["x-data-logging-enabled"] == "false"
        assert call.metadata["user-agent"].startswith(f"speechkit-player/{__version__} ")
        assert iam.exchanges == 1
        assert iam.user_agents == [USER_AGENT]
        await assert_no_secret_shows(daemon, secrets_of(iam, made_key))
    finally:
        assert await daemon.stop() == 0, daemon.log
        assert "Traceback" not in daemon.log, daemon.log


@pytest.fixture
def renewing_tone_script(iam: IamServer) -> ToneScript:
    # As test_long_text: 1 ms of tone per character, produced faster than it plays.
    return ToneScript(
        credentials=BearerCheck(iam.valid),
        ms_per_char=1.0,
        realtime_factor=1.5,
        first_chunk_delay=0.2,
    )


@pytest.mark.timeout(150)
async def test_tokens_renewed_during_a_long_utterance_leave_no_gap(
    daemons: Daemons,
    recorder: Recorder,
    iam: IamServer,
    made_key: GeneratedKey,
    key_file: Path,
    renewing_tone_script: ToneScript,
) -> None:
    iam.lifetime_s = SHORT_LIFETIME_S
    async with ToneServer(renewing_tone_script) as tone_server:
        daemon = await daemons.start(
            tone_server.address, None, speechkit=key_settings(key_file, iam)
        )
        start = recorder.sample_count()
        await say(daemon, LONG_TEXT)

        calls = await tone_server.wait_calls(len(tone_server.calls), PLAY_TIMEOUT)
        assert len(calls) >= 3
        assert all(call.status.name == "OK" for call in calls)
        tokens = [bearer(call) for call in calls]
        assert len(set(tokens)) >= 2, "every call carried the same token"
        assert iam.exchanges >= 2

        expected = sum(len(call.audio) for call in calls) / 2 / RATE
        x = (await record_until(recorder, heard_and_quiet(expected - 0.05), within=PLAY_TIMEOUT))[
            start:
        ]
        spans = aa.sound_spans(x, RATE)
        assert len(spans) == 1, [(a * 1000 // RATE, b * 1000 // RATE) for a, b in spans]
        played = x[spans[0][0] : spans[0][1]]
        assert len(played) / RATE == pytest.approx(expected, abs=0.05)
        longest_gap = max((length for _, length in aa.gaps(played, RATE)), default=0)
        assert longest_gap <= 0.010 * RATE, f"a {longest_gap / RATE * 1000:.1f} ms gap"
        await assert_no_secret_shows(daemon, secrets_of(iam, made_key))


async def test_a_revoked_key_is_one_line_and_the_daemon_serves_on(
    tone_server: ToneServer,
    daemons: Daemons,
    iam: IamServer,
    made_key: GeneratedKey,
    key_file: Path,
) -> None:
    iam.revoke(made_key.key_id)
    daemon = await daemons.start(tone_server.address, None, speechkit=key_settings(key_file, iam))

    result = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (
        f"the IAM service refused the service account key {made_key.key_id}: HTTP 401: "
        f"Key {made_key.key_id} is not found or revoked"
    ) in lines[0]
    assert not tone_server.calls, "a call was made without a token"
    await status_of(daemon)
    # The renewer keeps trying (with backoff), and says so once.
    await asyncio.to_thread(iam.wait_until, lambda: iam.refused >= 3, 30.0)
    assert daemon.log.count("retrying in") == 1, daemon.log
    assert made_key.pem_body()[1] not in daemon.log


async def test_an_unreachable_token_service_is_one_line(
    tone_server: ToneServer, daemons: Daemons, key_file: Path, iam: IamServer
) -> None:
    url = "http://127.0.0.1:9/iam/v1/tokens"  # discard: nothing listens there
    settings: dict[str, object] = {"service_account_key_file": str(key_file), "iam_endpoint": url}
    daemon = await daemons.start(tone_server.address, None, speechkit=settings)

    result = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot reach the IAM service at {url}: Connection refused" in lines[0]
    await status_of(daemon)


async def test_the_key_file_may_come_from_the_environment(
    tone_server: ToneServer,
    daemons: Daemons,
    recorder: Recorder,
    iam: IamServer,
    key_file: Path,
) -> None:
    # As the systemd unit passes it: LoadCredential= and a path in the environment.
    env = {"YANDEX_SERVICE_ACCOUNT_KEY_FILE": str(key_file)}
    daemon = await daemons.start_with_env(
        env, tone_server.address, None, speechkit={"iam_endpoint": iam.url}
    )
    start = recorder.sample_count()

    await say(daemon, TEXT)

    await heard(recorder, start, SHORT_S)
    assert iam.exchanges == 1


async def test_metadata_credentials_speak(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, iam: IamServer
) -> None:
    settings: dict[str, object] = {"credentials": "metadata", "metadata_url": iam.metadata_url}
    daemon = await daemons.start(tone_server.address, None, speechkit=settings)
    start = recorder.sample_count()

    await say(daemon, TEXT)

    await heard(recorder, start, SHORT_S)
    (call,) = await tone_server.wait_calls(1, 30.0)
    assert iam.valid(bearer(call))
    assert iam.metadata_requests == 1
    assert iam.exchanges == 0
    await assert_no_secret_shows(daemon, iam.issued)


async def test_a_rewritten_token_file_is_used_from_the_next_call(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder, tmp_path: Path
) -> None:
    valid = {"t1.first-token"}
    tone_server.script = ToneScript(credentials=BearerCheck(valid.__contains__))
    token_file = tmp_path / "iam-token"
    token_file.write_text("t1.first-token\n")
    daemon = await daemons.start(
        tone_server.address, None, speechkit={"iam_token_file": str(token_file)}
    )
    start = recorder.sample_count()
    await say(daemon, TEXT)
    await heard(recorder, start, SHORT_S)

    # An external refresher writes a new token (a new file renamed over the old); the
    # old one is revoked at once.
    new = tmp_path / "iam-token.new"
    new.write_text("t1.second-token\n")
    os.replace(new, token_file)
    valid.clear()
    valid.add("t1.second-token")
    start = recorder.sample_count()
    await say(daemon, TEXT)

    await heard(recorder, start, SHORT_S)
    calls = await tone_server.wait_calls(2, 30.0)
    assert [bearer(call) for call in calls] == ["t1.first-token", "t1.second-token"]
    await assert_no_secret_shows(daemon, ["t1.first-token", "t1.second-token"])


async def test_a_token_service_that_never_finishes_its_answer_does_not_hold_up_stopping(
    tone_server: ToneServer, daemons: Daemons, key_file: Path
) -> None:
    """A byte every second keeps any per-read timeout from firing: only a request that
    does not hold the exit lets the daemon stop."""
    connected = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 600:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        except (ConnectionError, asyncio.CancelledError):
            writer.close()
            raise

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/iam/v1/tokens"
        settings: dict[str, object] = {
            "service_account_key_file": str(key_file),
            "iam_endpoint": url,
        }
        daemon = await daemons.start(tone_server.address, None, speechkit=settings)
        await asyncio.wait_for(connected.wait(), TIMEOUT)

        # Daemon.stop kills a daemon that takes longer than STOP_TIMEOUT and raises.
        assert await daemon.stop() == 0, daemon.log
