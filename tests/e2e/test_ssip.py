"""End to end: speech-dispatcher's clients speak through the daemon's SSIP socket, heard
in the null sink. Debian's `spd-say` (libspeechd) and `python3-speechd` (run with the
system's python3) are the clients: programs we did not write."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from player.control.client import Client
from tests.e2e.common import (
    KEY,
    RATE,
    TIMEOUT,
    Listener,
    Recording,
    closed_port,
    heard_and_quiet,
    heard_at_least,
    killed_at_exit,
    of,
    quiet_for,
    record_until,
    sound_s,
    status_of,
)
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, Daemons
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneServer

MS_PER_CHAR = 40.0
"""The tone server's default: 40 ms of tone per character."""
SHORT = "Hello from a program that speaks."
LONG = "This message goes on for a long while, sentence after sentence. " * 3
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(
    shutil.which("spd-say") is None, reason="spd-say is not installed (scripts/setup --test)"
)


def tone_s(text: str) -> float:
    return len(text) * MS_PER_CHAR / 1000


@pytest.fixture
async def ssip_daemon(tone_server: ToneServer, daemons: Daemons, tmp_path: Path) -> Daemon:
    """A daemon serving SSIP on a socket of the test's own."""
    return await daemons.start(
        tone_server.address, KEY, ssip={"socket": str(tmp_path / "speechd.sock")}
    )


def client_env(daemon: Daemon, **extra: str) -> dict[str, str]:
    """What a client of ``daemon``'s SSIP socket runs with."""
    path = daemon.config.parent.parent / "speechd.sock"
    return {**os.environ, "SPEECHD_ADDRESS": f"unix_socket:{path}", **extra}


async def spd_say(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        "spd-say", *args, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    async with killed_at_exit(proc):
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(
        ["spd-say", *args], proc.returncode, out.decode(), err.decode()
    )


def sound_ended_at(recorder: Recorder, x: Recording, start: int) -> float:
    """time.monotonic() when the last sound after sample ``start`` was heard."""
    spans = aa.sound_spans(x[start:], RATE)
    assert spans, "nothing was heard"
    return recorder.arrival_time(start + spans[-1][1] - 1)


def speech_dispatchers_of(marker: Path) -> list[int]:
    """speech-dispatcher processes a client of this test started: those whose environment
    names ``marker`` (its socket's folder). Others on the machine are not the test's."""
    found = subprocess.run(["pgrep", "-x", "speech-dispatch"], capture_output=True, text=True)
    ours = []
    for pid in found.stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if os.fsencode(marker) in environ:
            ours.append(int(pid))
    return ours


async def test_spd_say_returns_at_once_and_is_heard_in_full(
    ssip_daemon: Daemon, recorder: Recorder, tone_server: ToneServer
) -> None:
    start = recorder.sample_count()
    result = await spd_say(client_env(ssip_daemon), SHORT)
    returned = time.monotonic()
    assert result.returncode == 0, result.stderr
    x = await record_until(recorder, heard_and_quiet(tone_s(SHORT) - 0.1, 0.2, since=start))
    assert abs(sound_s(x[start:]) - tone_s(SHORT)) < 0.1
    # It had gone long before its speech ended: what is queued plays on without it.
    assert sound_ended_at(recorder, x, start) - returned > tone_s(SHORT) / 2
    calls = await tone_server.wait_calls(1, TIMEOUT)
    assert "".join(calls[0].texts).strip() == SHORT
    assert speech_dispatchers_of(ssip_daemon.config.parent.parent) == []


async def test_spd_say_wait_returns_once_the_audio_has_ended(
    ssip_daemon: Daemon, recorder: Recorder
) -> None:
    start = recorder.sample_count()
    result = await spd_say(client_env(ssip_daemon), "-w", SHORT)
    returned = time.monotonic()
    assert result.returncode == 0, result.stderr
    x = await record_until(recorder, heard_and_quiet(tone_s(SHORT) - 0.1, 0.2, since=start))
    # END comes once the last sample has left the output callback; the sink's own
    # latency and the recorder's come after that.
    assert sound_ended_at(recorder, x, start) - returned < 0.15


async def test_spd_say_important_cuts_in_and_cancel_silences(
    ssip_daemon: Daemon, recorder: Recorder
) -> None:
    env = client_env(ssip_daemon)
    start = recorder.sample_count()
    async with Client(ssip_daemon.socket) as client, Listener(client) as listener:
        assert (await spd_say(env, "-P", "message", LONG)).returncode == 0
        await heard_at_least(recorder, start, 500)
        assert (await spd_say(env, "-P", "important", "Now.")).returncode == 0
        events = await listener.until("finished")
        queued = of(events, None, "queued")
        assert [e["origin"] for e in queued] == ["ssip", "ssip"]
        user = pwd.getpwuid(os.getuid()).pw_name
        assert all(e["client"] == f"{user}:spd-say:main" for e in queued)
        long_id, important_id = (str(e["id"]) for e in queued)
        # The important message was heard while the long one waited to go on, and at
        # once: its first audio within a few hundred ms of asking (generous on a busy
        # machine; the benchmark measures it).
        assert of(events, long_id, "interrupted"), events
        assert of(events, important_id, "finished"), events
        (started,) = of(events, important_id, "started")
        assert int(str(started["first_audio_ms"])) < 1000, started
        await listener.count("started", long_id, 2)
        assert (await spd_say(env, "-C")).returncode == 0
        await listener.until("cancelled", long_id)
    x = await quiet_for(recorder, start, 0.3)
    assert sound_s(x[start:]) < tone_s(LONG) - 1.0


async def test_spd_say_stop_silences_the_message_being_spoken(
    ssip_daemon: Daemon, recorder: Recorder
) -> None:
    env = client_env(ssip_daemon)
    start = recorder.sample_count()
    async with Client(ssip_daemon.socket) as client, Listener(client) as listener:
        assert (await spd_say(env, LONG)).returncode == 0
        await heard_at_least(recorder, start, 300)
        status = await status_of(ssip_daemon)
        user = pwd.getpwuid(os.getuid()).pw_name
        speaking = {"id": "u1", "origin": "ssip", "client": f"{user}:spd-say:main"}
        assert status["speaking"] == speaking, status
        assert status["counters"]["requests"] == {"ssip": 1}, status  # type: ignore[index]
        assert (await spd_say(env, "-S")).returncode == 0
        await listener.until("cancelled")
    x = await quiet_for(recorder, start, 0.3)
    assert sound_s(x[start:]) < tone_s(LONG) - 1.0


async def test_spd_say_lists_the_speechkit_voices(ssip_daemon: Daemon) -> None:
    result = await spd_say(client_env(ssip_daemon), "-L")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert ["marina", "ru-RU", "none"] in rows
    assert ["john", "en-US", "none"] in rows


SPEECHD_SCRIPT = r"""
import sys, threading, speechd

client = speechd.SSIPClient("tests")
voices = client.list_synthesis_voices()
print("voices", len(voices), ("marina", "ru-RU", "none") in voices, flush=True)
events = []
ended = threading.Event()

def callback(kind, index_mark=None):
    events.append(kind)
    if kind in (speechd.CallbackType.END, speechd.CallbackType.CANCEL):
        ended.set()

client.speak(sys.argv[1], callback=callback,
             event_types=(speechd.CallbackType.BEGIN, speechd.CallbackType.END,
                          speechd.CallbackType.CANCEL))
assert ended.wait(20), events
print("first", " ".join(str(e) for e in events), flush=True)
events.clear(); ended.clear()
client.speak(sys.argv[2], callback=callback,
             event_types=(speechd.CallbackType.BEGIN, speechd.CallbackType.END,
                          speechd.CallbackType.CANCEL))
client.cancel()
assert ended.wait(20), events
print("second", " ".join(str(e) for e in events), flush=True)
client.close()
"""


@pytest.mark.skipif(
    subprocess.run([SYSTEM_PYTHON, "-c", "import speechd"], capture_output=True).returncode != 0,
    reason="python3-speechd is not installed (scripts/setup --test)",
)
async def test_python_speechd_lists_voices_hears_begin_end_and_cancel(
    ssip_daemon: Daemon, recorder: Recorder, tone_server: ToneServer
) -> None:
    dotted = "Lines that start with a dot.\n.hidden stays\n..two dots stay too."
    proc = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, "-c", SPEECHD_SCRIPT, dotted, LONG,
        env=client_env(ssip_daemon), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    async with killed_at_exit(proc):
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode() + ssip_daemon.log
    lines = out.decode().splitlines()
    assert lines[0] == "voices 24 True", lines
    assert lines[1] == "first begin end", lines
    assert lines[2].endswith("cancel"), lines
    calls = await tone_server.wait_calls(1, TIMEOUT)
    sent = " ".join("".join(calls[0].texts).split())
    assert sent == " ".join(dotted.split())


def raw_session(path: Path, chunks: list[bytes]) -> list[bytes]:
    """Each chunk sent, and what came back before the next (read until a final line)."""
    answers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        for chunk in chunks:
            sock.sendall(chunk)
            answer = b""
            while True:
                line = reader.readline()
                answer += line
                if not line or line[3:4] == b" ":
                    break
            answers.append(answer)
    return answers


async def test_bad_input_gets_its_error_line_and_the_connection_goes_on(
    ssip_daemon: Daemon, tmp_path: Path, tone_server: ToneServer
) -> None:
    path = tmp_path / "speechd.sock"
    answers = await asyncio.to_thread(
        raw_session,
        path,
        [
            b"FROBNICATE\r\n",
            b"set self rate 500\r\n",
            b"SET self RATE fast\r\n",
            b"SET self PRIORITY urgent\r\n",
            b"SPEAK\r\n",
            b"\xff\xfe not UTF-8\r\n.\r\n",
            b"SPEAK\r\n",
            b".\r\n",
            b"SPEAK\r\n",
            b"x" * 2_000_000 + b"\r\n.\r\n",
            b"speak\n",
            b"Still here.\r\n.\r\n",
            b"QUIT\r\n",
        ],
    )
    assert answers == [
        b"500 ERR INVALID COMMAND\r\n",
        b"409 ERR RATE TOO HIGH\r\n",
        b"511 ERR PARAMETER NOT A NUMBER\r\n",
        b"408 ERR UNKNOWN PRIORITY\r\n",
        b"230 OK RECEIVING DATA\r\n",
        b"501 ERR INVALID ENCODING\r\n",
        b"230 OK RECEIVING DATA\r\n",
        b"227 OK MESSAGE CANCELED\r\n",
        b"230 OK RECEIVING DATA\r\n",
        b"516 ERR LINE TOO LONG\r\n",
        b"230 OK RECEIVING DATA\r\n",
        answers[11],
        b"231 HAPPY HACKING\r\n",
    ]
    assert answers[11].endswith(b"\r\n225 OK MESSAGE QUEUED\r\n"), answers[11]
    calls = await tone_server.wait_calls(1, TIMEOUT)
    assert "".join(calls[0].texts).strip() == "Still here."


async def test_auto_serves_the_standard_socket_and_spd_say_finds_it(
    tone_server: ToneServer, daemons: Daemons, tmp_path: Path, recorder: Recorder
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    daemon = await daemons.start_with_env(env, tone_server.address, KEY, ssip={"socket": "auto"})
    standard = runtime / "speech-dispatcher" / "speechd.sock"
    assert standard.is_socket(), daemon.log
    start = recorder.sample_count()
    client = {k: v for k, v in os.environ.items() if k != "SPEECHD_ADDRESS"}
    result = await spd_say({**client, **env}, "-w", SHORT)
    assert result.returncode == 0, result.stderr
    await record_until(recorder, heard_and_quiet(tone_s(SHORT) - 0.1, 0.2, since=start))
    assert speech_dispatchers_of(runtime) == []


async def test_auto_leaves_a_live_speech_dispatcher_socket_alone(
    tone_server: ToneServer, daemons: Daemons, tmp_path: Path
) -> None:
    runtime = tmp_path / "runtime"
    standard = runtime / "speech-dispatcher" / "speechd.sock"
    standard.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(standard))
        live.listen()
        before = standard.lstat().st_ino
        env = {"XDG_RUNTIME_DIR": str(runtime)}
        daemon = await daemons.start_with_env(
            env, tone_server.address, KEY, ssip={"socket": "auto"}
        )
        assert "a speech-dispatcher already serves" in daemon.log
        await daemon.stop()
        assert standard.lstat().st_ino == before


async def test_voice_rate_pitch_and_volume_reach_speechkit(
    ssip_daemon: Daemon, tone_server: ToneServer
) -> None:
    env = client_env(ssip_daemon)
    said = await spd_say(env, "-w", "-y", "JOHN", "-r", "50", "-p", "-20", "-i", "60", SHORT)
    assert said.returncode == 0, said.stderr
    assert (await spd_say(env, "-w", "-l", "de", SHORT)).returncode == 0
    assert (await spd_say(env, "-w", "-l", "ru", SHORT)).returncode == 0
    first, german, russian = await tone_server.wait_calls(3, TIMEOUT)
    assert first.options is not None
    assert first.options.voice == "john"
    assert first.options.speed == pytest.approx(1.732)
    assert (first.options.pitch_shift, first.options.volume) == (-40.0, -25.0)
    assert german.options is not None
    assert german.options.voice == "lea"
    # The configured voice speaks Russian: a language it speaks keeps it.
    assert russian.options is not None
    assert (russian.options.voice, russian.options.speed) == ("marina", 1.0)


async def test_an_unknown_voice_is_refused_and_the_configured_one_speaks(
    ssip_daemon: Daemon, tmp_path: Path, tone_server: ToneServer
) -> None:
    answers = await asyncio.to_thread(
        raw_session,
        tmp_path / "speechd.sock",
        [b"SET self SYNTHESIS_VOICE nobody\r\n", b"SPEAK\r\n", b"Hello.\r\n.\r\n"],
    )
    assert answers[0] == b"309 ERR COULDNT SET VOICE\r\n"
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert call.options is not None
    assert call.options.voice == "marina"


ORCA_SCRIPT = r"""
import threading, speechd

# What Orca's speech-dispatcher factory does: on connect, then for each utterance.
client = speechd.SSIPClient("orca", component="default")
client.set_priority(speechd.Priority.MESSAGE)
client.set_data_mode(speechd.DataMode.SSML)
client.set_punctuation(speechd.PunctuationMode.SOME)
client.set_cap_let_recogn("none")
seen = []
ended = threading.Event()

def callback(kind, index_mark=None):
    seen.append(index_mark if kind == speechd.CallbackType.INDEX_MARK else str(kind))
    if kind in (speechd.CallbackType.END, speechd.CallbackType.CANCEL):
        ended.set()

client.set_language("en")
client.set_rate(10)
client.set_pitch(0)
client.set_volume(0)
client.speak(
    '<speak><mark name="0:6"/>Hello, <mark name="6:12"/>big world. '
    '<mark name="18:25"/>And &amp; more.</speak>',
    callback=callback,
    event_types=(speechd.CallbackType.BEGIN, speechd.CallbackType.END,
                 speechd.CallbackType.CANCEL, speechd.CallbackType.INDEX_MARK),
)
assert ended.wait(20), seen
print(" ".join(seen), flush=True)
client.close()
"""


@pytest.mark.skipif(
    subprocess.run([SYSTEM_PYTHON, "-c", "import speechd"], capture_output=True).returncode != 0,
    reason="python3-speechd is not installed (scripts/setup --test)",
)
async def test_orca_s_ssml_with_marks_gives_index_marks_in_order_before_the_end(
    ssip_daemon: Daemon, tone_server: ToneServer
) -> None:
    proc = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, "-c", ORCA_SCRIPT,
        env=client_env(ssip_daemon), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    async with killed_at_exit(proc):
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode() + ssip_daemon.log
    assert out.decode().split() == ["begin", "0:6", "6:12", "18:25", "end"]
    (call,) = await tone_server.wait_calls(1, TIMEOUT)
    assert " ".join("".join(call.texts).split()) == "Hello, big world. And & more."
    assert call.options is not None
    assert call.options.voice == "john"
    assert call.options.speed == pytest.approx(3**0.1, abs=1e-3)


async def test_half_a_line_and_a_flood_hold_up_no_other_client(
    ssip_daemon: Daemon, tmp_path: Path, recorder: Recorder
) -> None:
    path = tmp_path / "speechd.sock"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as half,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as flood,
    ):
        half.connect(str(path))
        half.sendall(b"SET self PRIOR")  # and nothing more
        flood.connect(str(path))
        flood.setblocking(False)
        # Commands whose replies it never reads, until its socket takes no more.
        with contextlib.suppress(BlockingIOError):
            for _ in range(200_000):
                flood.send(b"SET self NOTIFICATION all on\r\nFROBNICATE\r\n")
        start = recorder.sample_count()
        result = await spd_say(client_env(ssip_daemon), "-w", SHORT)
        assert result.returncode == 0, result.stderr
        await record_until(recorder, heard_and_quiet(tone_s(SHORT) - 0.1, 0.2, since=start))


def write_wav(path: Path, seconds: float, hz: float = 660.0) -> None:
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.4 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


async def test_a_sound_icon_plays_its_wav_and_an_unknown_one_plays_nothing(
    tone_server: ToneServer, daemons: Daemons, tmp_path: Path, recorder: Recorder
) -> None:
    write_wav(tmp_path / "bell.wav", 0.4)
    path = tmp_path / "speechd.sock"
    icons = {"bell": str(tmp_path / "bell.wav")}
    await daemons.start(tone_server.address, KEY, ssip={"socket": str(path), "sound_icons": icons})
    start = recorder.sample_count()
    answers = await asyncio.to_thread(
        raw_session,
        path,
        # No events asked for: they would come between these replies.
        [b"SOUND_ICON Bell\r\n", b"SOUND_ICON whistle\r\n"],
    )
    # speech-dispatcher's answers: queued, for a known icon and an unknown one alike.
    assert [a.split(b"\r\n")[1] for a in answers] == [b"225 OK MESSAGE QUEUED"] * 2, answers
    x = await record_until(recorder, heard_and_quiet(0.35, 0.2, since=start))
    assert abs(sound_s(x[start:]) - 0.4) < 0.05
    assert tone_server.calls == []  # a sound, not speech


async def test_signs_alone_are_queued_and_end_at_once_as_speech_dispatcher_s_do(
    ssip_daemon: Daemon, tmp_path: Path, tone_server: ToneServer
) -> None:
    def session() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(tmp_path / "speechd.sock"))
            sock.sendall(b"SET self NOTIFICATION all on\r\nSPEAK\r\n***\r\n.\r\nCHAR !\r\n")
            got = b""
            while got.count(b"702 END\r\n") < 2:
                chunk = sock.recv(4096)
                assert chunk, got
                got += chunk
            return got

    got = await asyncio.to_thread(session)
    lines = got.decode().split("\r\n")
    first, second = (lines[i - 1].removeprefix("225-") for i, line in enumerate(lines)
                     if line == "225 OK MESSAGE QUEUED")  # fmt: skip
    for message in (first, second):
        begin = lines.index(f"701-{message}")
        assert lines[begin + 2 : begin + 3] == ["701 BEGIN"], lines
        assert f"702-{message}" in lines[begin:], lines
    (call,) = await tone_server.wait_calls(1, TIMEOUT)  # the "!" is spoken by name
    assert "".join(call.texts).strip() == "exclamation mark"


async def test_a_client_that_goes_away_paused_does_not_leave_the_speaker_silent(
    ssip_daemon: Daemon, tmp_path: Path, recorder: Recorder
) -> None:
    path = tmp_path / "speechd.sock"
    start = recorder.sample_count()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        sock.sendall(b"SET self PRIORITY message\r\nSPEAK\r\n" + LONG.encode() + b"\r\n.\r\n")
        for _ in range(4):  # 202, 230, 225-N and 225
            await asyncio.to_thread(reader.readline)
        await heard_at_least(recorder, start, 300)
        sock.sendall(b"PAUSE self\r\n")
        assert await asyncio.to_thread(reader.readline) == b"211 OK PAUSED\r\n"
        assert (await status_of(ssip_daemon))["paused"] is True
        reader.close()  # it holds the socket open
    # Gone without RESUME: its message plays on.
    async with asyncio.timeout(TIMEOUT):
        # The daemon is another process: asking it is the only way to learn its state.
        while (await status_of(ssip_daemon))["paused"]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await record_until(recorder, heard_and_quiet(tone_s(LONG) - 0.2, 0.2, since=start))


async def test_spd_say_speaks_over_tcp_when_listen_asks_for_it(
    tone_server: ToneServer, daemons: Daemons, recorder: Recorder
) -> None:
    listen = closed_port()
    await daemons.start(tone_server.address, KEY, ssip={"socket": "off", "listen": listen})
    start = recorder.sample_count()
    env = {**os.environ, "SPEECHD_ADDRESS": f"inet_socket:{listen}"}
    result = await spd_say(env, "-w", SHORT)
    assert result.returncode == 0, result.stderr
    await record_until(recorder, heard_and_quiet(tone_s(SHORT) - 0.1, 0.2, since=start))
