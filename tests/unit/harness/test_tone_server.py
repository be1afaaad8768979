"""The tone server, driven through a real grpc.aio client on a local port."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2_grpc
from player.local.service import UNAUTHENTICATED_DETAILS
from tests.harness import audio_analysis as aa
from tests.harness.tone_server import ToneScript, ToneServer
from tests.harness.tone_synth import Chunker, Pacer, ToneGenerator

TIMEOUT = 10.0
"""Seconds any single await in these tests may take before the test fails."""

RATE = 16000
TEXT_1S = "twenty-five characters.. "  # 25 chars * 40 ms = 1 s = 16000 samples at 16 kHz
assert len(TEXT_1S) == 25

Request = tts_pb2.StreamSynthesisRequest


def options(
    voice: str = "marina", rate: int = RATE, **fields: Any
) -> tts_pb2.StreamSynthesisRequest:
    spec = tts_pb2.AudioFormatOptions(
        raw_audio=tts_pb2.RawAudio(
            audio_encoding=tts_pb2.RawAudio.LINEAR16_PCM, sample_rate_hertz=rate
        )
    )
    return Request(options=tts_pb2.SynthesisOptions(voice=voice, output_audio_spec=spec, **fields))


def text(piece: str) -> tts_pb2.StreamSynthesisRequest:
    return Request(synthesis_input=tts_pb2.SynthesisInput(text=piece))


@dataclass
class Outcome:
    """What the client saw of one call."""

    responses: list[tts_pb2.StreamSynthesisResponse] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    initial_metadata: dict[str, str] = field(default_factory=dict)
    text_written_at: float = 0.0

    @property
    def audio(self) -> bytes:
        return b"".join(r.audio_chunk.data for r in self.responses)


async def synthesize(
    address: str,
    requests: Sequence[tts_pb2.StreamSynthesisRequest],
    metadata: Sequence[tuple[str, str]] = (),
    *,
    half_close: bool = True,
) -> Outcome:
    """One call with call.write()/done_writing(); every await bounded.

    Calls the server is expected to end early pass half_close=False and end `requests`
    with the message that ends the call: grpc.aio reports INTERNAL "Internal error from
    Core" instead of the server's status when a client write (or half-close) races the
    server's early status (grpc/grpc#36066), so these tests never write after it.
    """
    outcome = Outcome()
    async with grpc.aio.insecure_channel(address) as channel:
        call = tts_service_pb2_grpc.SynthesizerStub(channel).StreamSynthesis(
            metadata=tuple(metadata)
        )
        try:
            for i, request in enumerate(requests):
                if i == 1:
                    outcome.text_written_at = time.monotonic()
                await asyncio.wait_for(call.write(request), TIMEOUT)
            if half_close:
                await asyncio.wait_for(call.done_writing(), TIMEOUT)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the server ended the call early; read() below reports why
        try:
            while (response := await asyncio.wait_for(call.read(), TIMEOUT)) is not grpc.aio.EOF:
                assert isinstance(response, tts_pb2.StreamSynthesisResponse)
                outcome.received_at.append(time.monotonic())
                outcome.responses.append(response)
        except grpc.aio.AioRpcError as error:
            outcome.code, outcome.details = error.code(), error.details() or ""
        initial = await asyncio.wait_for(call.initial_metadata(), TIMEOUT)
        outcome.initial_metadata = {k: str(v) for k, v in initial or ()}
        if outcome.code == grpc.StatusCode.OK:
            outcome.code = await asyncio.wait_for(call.code(), TIMEOUT)
    return outcome


@pytest.fixture
async def running() -> AsyncIterator[tuple[ToneServer, str]]:
    tone_server = ToneServer()
    bound = await asyncio.wait_for(tone_server.start(), TIMEOUT)
    yield tone_server, bound
    await asyncio.wait_for(tone_server.stop(), TIMEOUT)


@pytest.fixture
def server(running: tuple[ToneServer, str]) -> ToneServer:
    return running[0]


@pytest.fixture
def address(running: tuple[ToneServer, str]) -> str:
    """host:port of `server`, on a port the OS picked."""
    return running[1]


def reference_tone(samples: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """Independent of ToneGenerator: the ideal sine, rounded to int16."""
    n = np.arange(samples)
    return np.rint(amplitude * 32767 * np.sin(2 * np.pi * frequency * n / RATE)).astype(int)


# --- audio content --------------------------------------------------------------------------


async def test_audio_equals_expected_pcm(server: ToneServer, address: str) -> None:
    outcome = await synthesize(
        address, [options(), text(TEXT_1S)], [("x-client-request-id", "client-42")]
    )
    assert outcome.code == grpc.StatusCode.OK
    assert len(outcome.audio) == RATE * 2  # 1 s of 16-bit mono
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)
    assert outcome.responses[0].text_chunk.text == TEXT_1S
    assert all(not r.text_chunk.text for r in outcome.responses[1:])
    assert re.fullmatch(r"[0-9a-f-]{36}", outcome.initial_metadata["x-request-id"])
    last = outcome.responses[-1]
    assert outcome.responses[0].start_ms == 0
    assert last.start_ms + last.length_ms == 1000
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.metadata["x-client-request-id"] == "client-42"
    assert record.texts == [TEXT_1S]
    assert record.audio == outcome.audio
    assert record.status == grpc.StatusCode.OK
    assert record.half_closed
    assert record.options is not None
    assert record.options.voice == "marina"


async def test_chunks_have_odd_sizes_that_split_samples(address: str) -> None:
    outcome = await synthesize(address, [options(), text(TEXT_1S)])
    sizes = [len(r.audio_chunk.data) for r in outcome.responses]
    assert sizes[:6] == [4801, 3000, 1, 4801, 3000, 1]
    assert sum(sizes) == RATE * 2
    offsets = np.cumsum(sizes)
    assert (offsets[:-1] % 2 == 1).any()  # some chunk ends in the middle of a sample


async def test_pieces_join_into_one_unbroken_tone(server: ToneServer, address: str) -> None:
    first, second = "Hello! ", "I'm Masha, a sine wave. "
    outcome = await synthesize(address, [options(), text(first), text(second)])
    assert outcome.code == grpc.StatusCode.OK
    one_tone = server.expected_pcm([first + second], RATE)
    assert outcome.audio == one_tone
    assert outcome.audio == server.expected_pcm([first, second], RATE)
    samples = np.frombuffer(outcome.audio, dtype="<i2").astype(int)
    assert len(samples) == (len(first) + len(second)) * 640
    assert np.abs(samples - reference_tone(len(samples))).max() <= 1
    texts = [r.text_chunk.text for r in outcome.responses if r.text_chunk.text]
    assert texts == [first, second]


async def test_chunk_sizes_recorded_per_chunk_across_pieces(
    server: ToneServer, address: str
) -> None:
    # One sentence per piece, as the daemon sends them: each piece ends on a short
    # leftover chunk, so the sizes cannot be re-derived from the script's cycle alone.
    sentences = ["Attention, please. ", "The museum closes soon. ", "Thank you."]
    outcome = await synthesize(address, [options(), *map(text, sentences)])
    assert outcome.code == grpc.StatusCode.OK
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.texts == sentences
    assert len(record.chunk_sizes) == len(record.chunk_times)
    assert sum(record.chunk_sizes) == len(record.audio)
    assert record.chunk_sizes == [len(r.audio_chunk.data) for r in outcome.responses]


async def test_script_replaced_between_calls(server: ToneServer, address: str) -> None:
    server.script = ToneScript(frequency_hz=1000.0, amplitude=0.25, ms_per_char=10.0)
    outcome = await synthesize(address, [options(rate=8000), text("abcd")])
    assert len(outcome.audio) == 4 * 80 * 2
    assert outcome.audio == server.expected_pcm(["abcd"], 8000)


async def test_next_scripts_serve_one_call_each_in_order(server: ToneServer, address: str) -> None:
    server.script = ToneScript(ms_per_char=10.0)
    server.next_scripts = [
        ToneScript(abort_after_bytes=100, abort_code=grpc.StatusCode.INTERNAL),
        ToneScript(api_key="other"),
    ]
    first = await synthesize(address, [options(), text("abcd")], half_close=False)
    second = await synthesize(address, [options()], half_close=False)
    third = await synthesize(address, [options(), text("abcd")])
    assert (first.code, second.code) == (
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert third.code == grpc.StatusCode.OK
    assert len(third.audio) == 4 * 10 * RATE // 1000 * 2
    assert server.next_scripts == []


async def test_pieces_holding_a_keyed_word_have_its_pitch(server: ToneServer, address: str) -> None:
    server.script = ToneScript(frequencies=(("two", 660.0), ("three", 880.0)))
    texts = ["One is plain. ", "Then two. ", "And three. ", "One again. "]
    outcome = await synthesize(address, [options(), *(text(t) for t in texts)])
    assert outcome.audio == server.expected_pcm(texts, RATE)
    samples = np.frombuffer(outcome.audio, dtype="<i2")
    heard, at = [], 0
    for piece in texts:
        n = len(server.expected_pcm([piece], RATE)) // 2
        heard.append(aa.dominant_frequency(samples[at : at + n], RATE))
        at += n
    assert heard == pytest.approx([440.0, 660.0, 880.0, 440.0], abs=5.0)


async def test_force_synthesis_counted_and_empty_stream_ends_ok(
    server: ToneServer, address: str
) -> None:
    force = Request(force_synthesis=tts_pb2.ForceSynthesisEvent())
    outcome = await synthesize(address, [options(), force, force])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.audio == b""
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.forced == 2
    assert record.first_chunk_at is None


# --- pacing: lower bounds only ----------------------------------------------------------------


async def test_first_chunk_delay(server: ToneServer, address: str) -> None:
    server.script = ToneScript(first_chunk_delay=0.3)
    outcome = await synthesize(address, [options(), text("abc ")])
    assert outcome.received_at[0] - outcome.text_written_at >= 0.29
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.first_chunk_at is not None
    assert record.first_chunk_at - record.started >= 0.29


async def test_realtime_factor(server: ToneServer, address: str) -> None:
    server.script = ToneScript(realtime_factor=2.0)
    outcome = await synthesize(address, [options(), text(TEXT_1S)])
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)
    assert outcome.received_at[-1] - outcome.text_written_at >= 0.45
    audio_end = 0
    for response, at in zip(outcome.responses, outcome.received_at, strict=True):
        audio_end += len(response.audio_chunk.data)
        assert at - outcome.text_written_at >= audio_end / (2 * RATE) / 2.0 - 0.01


async def test_jitter_keeps_order_and_audio(server: ToneServer, address: str) -> None:
    server.script = ToneScript(realtime_factor=4.0, jitter=0.02, chunk_bytes=(2001,))
    outcome = await synthesize(address, [options(), text(TEXT_1S)])
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)
    assert outcome.received_at[-1] - outcome.text_written_at >= 0.25 - 0.02


async def test_text_keeps_arriving_while_audio_is_paced(server: ToneServer, address: str) -> None:
    server.script = ToneScript(realtime_factor=1.0, chunk_bytes=(640,))
    async with grpc.aio.insecure_channel(address) as channel:
        call = tts_service_pb2_grpc.SynthesizerStub(channel).StreamSynthesis()
        await asyncio.wait_for(call.write(options()), TIMEOUT)
        await asyncio.wait_for(call.write(text(TEXT_1S)), TIMEOUT)
        first = await asyncio.wait_for(call.read(), TIMEOUT)
        assert isinstance(first, tts_pb2.StreamSynthesisResponse)
        await asyncio.wait_for(call.write(text("more ")), TIMEOUT)  # piece 1 still playing
        await asyncio.wait_for(call.done_writing(), TIMEOUT)
        audio = bytearray(first.audio_chunk.data)
        while (response := await asyncio.wait_for(call.read(), TIMEOUT)) is not grpc.aio.EOF:
            assert isinstance(response, tts_pb2.StreamSynthesisResponse)
            audio += response.audio_chunk.data
    assert bytes(audio) == server.expected_pcm([TEXT_1S, "more "], RATE)


# --- faults -----------------------------------------------------------------------------------


async def test_abort_after_bytes(
    server: ToneServer, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = ToneScript(
        abort_after_bytes=10_000, abort_code=grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    outcome = await synthesize(address, [options(), text(TEXT_1S)], half_close=False)
    assert outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert outcome.details == "stream aborted by test server"
    assert len(outcome.audio) == 10_000
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)[:10_000]
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_client_cancel_is_recorded_quietly(
    server: ToneServer, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = ToneScript(realtime_factor=1.0)
    async with grpc.aio.insecure_channel(address) as channel:
        call = tts_service_pb2_grpc.SynthesizerStub(channel).StreamSynthesis()
        await asyncio.wait_for(call.write(options()), TIMEOUT)
        await asyncio.wait_for(call.write(text(TEXT_1S * 4)), TIMEOUT)
        await asyncio.wait_for(call.read(), TIMEOUT)
        call.cancel()
        (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.CANCELLED
    assert 0 < len(record.audio) < 4 * RATE * 2
    await asyncio.wait_for(server.stop(), TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_many_cancels_at_random_points_stay_quiet(
    server: ToneServer, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = ToneScript(chunk_bytes=(1001,))
    rng = random.Random(7)
    calls = 40
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tts_service_pb2_grpc.SynthesizerStub(channel)
        for _ in range(calls):
            call = stub.StreamSynthesis()
            await asyncio.wait_for(call.write(options(rate=48000)), TIMEOUT)
            await asyncio.wait_for(call.write(text("x" * 2000)), TIMEOUT)
            for _ in range(rng.randint(0, 20)):
                await asyncio.wait_for(call.read(), TIMEOUT)
            call.cancel()
        records = await server.wait_calls(calls, TIMEOUT)
    assert {r.status for r in records} == {grpc.StatusCode.CANCELLED}
    await asyncio.wait_for(server.stop(), TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_never_answer_reads_the_text_and_holds_the_call_open(
    server: ToneServer, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = ToneScript(never_answer=True)
    async with grpc.aio.insecure_channel(address) as channel:
        call = tts_service_pb2_grpc.SynthesizerStub(channel).StreamSynthesis()
        await asyncio.wait_for(call.write(options()), TIMEOUT)
        await asyncio.wait_for(call.write(text(TEXT_1S)), TIMEOUT)
        await asyncio.wait_for(call.done_writing(), TIMEOUT)
        # Silence can only be shown by waiting: half a second with nothing, not even the end.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call.read(), 0.5)
        (record,) = server.calls
        assert record.texts == [TEXT_1S]
        assert record.half_closed
        assert record.finished_at is None
        call.cancel()
        (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.CANCELLED
    assert record.responses == []
    await asyncio.wait_for(server.stop(), TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_stall_after_bytes_pauses_then_sends_the_rest(
    server: ToneServer, address: str
) -> None:
    server.script = ToneScript(stall_after_bytes=10_000, stall_s=0.3)
    outcome = await synthesize(address, [options(), text(TEXT_1S)])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)
    offsets = np.cumsum([len(r.audio_chunk.data) for r in outcome.responses])
    resumed = int(np.searchsorted(offsets, 10_000, side="right"))
    assert offsets[resumed - 1] == 10_000  # the stall starts exactly at the byte asked for
    assert outcome.received_at[resumed] - outcome.received_at[resumed - 1] >= 0.29
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.stalled_at is not None


async def test_endless_stall_holds_the_call_open(server: ToneServer, address: str) -> None:
    server.script = ToneScript(stall_after_bytes=10_000)
    async with grpc.aio.insecure_channel(address) as channel:
        call = tts_service_pb2_grpc.SynthesizerStub(channel).StreamSynthesis()
        await asyncio.wait_for(call.write(options()), TIMEOUT)
        await asyncio.wait_for(call.write(text(TEXT_1S)), TIMEOUT)
        await asyncio.wait_for(call.done_writing(), TIMEOUT)
        audio = b""
        while len(audio) < 10_000:
            response = await asyncio.wait_for(call.read(), TIMEOUT)
            assert isinstance(response, tts_pb2.StreamSynthesisResponse)
            audio += response.audio_chunk.data
        assert len(audio) == 10_000
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call.read(), 0.5)
        call.cancel()
        (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.CANCELLED
    assert len(record.audio) == 10_000


async def test_text_only_first_sends_each_text_ahead_of_its_audio(
    server: ToneServer, address: str
) -> None:
    server.script = ToneScript(text_only_first=True, first_chunk_delay=0.2)
    first, second = "Hello there. ", "General Kenobi. "
    outcome = await synthesize(address, [options(), text(first), text(second)])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.audio == server.expected_pcm([first, second], RATE)
    Response = tts_pb2.StreamSynthesisResponse
    kinds = [r.chunk_type for r in outcome.responses]
    ahead = [i for i, kind in enumerate(kinds) if kind == Response.TEXT_ONLY]
    assert len(ahead) == 2
    assert ahead[0] == 0
    assert set(kinds) == {Response.TEXT_ONLY, Response.AUDIO_ONLY}
    for i in ahead:
        assert not outcome.responses[i].audio_chunk.data
    assert [outcome.responses[i].text_chunk.text for i in ahead] == [first, second]
    assert all(not r.text_chunk.text for r in outcome.responses if r.audio_chunk.data)
    # Each text says where its audio starts, and comes before any of that audio.
    second_start = len(first) * 40
    assert [outcome.responses[i].start_ms for i in ahead] == [0, second_start]
    assert outcome.responses[ahead[1] + 1].start_ms == second_start
    assert outcome.received_at[1] - outcome.received_at[0] >= 0.19  # the first chunk's delay


async def test_unspeakable_piece_gets_no_speakable_text_and_no_audio(
    server: ToneServer, address: str
) -> None:
    server.script = ToneScript(unspeakable_pieces=frozenset({1}))
    pieces = ["Hello. ", "*** ", "Bye. "]
    outcome = await synthesize(address, [options(), *map(text, pieces)])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.audio == server.expected_pcm([pieces[0], pieces[2]], RATE)
    Response = tts_pb2.StreamSynthesisResponse
    (quiet,) = [r for r in outcome.responses if r.chunk_type == Response.NO_SPEAKABLE_TEXT]
    assert not quiet.audio_chunk.data
    assert not quiet.text_chunk.text
    texts = [r.text_chunk.text for r in outcome.responses if r.text_chunk.text]
    assert texts == [pieces[0], pieces[2]]


# --- auth ---------------------------------------------------------------------------------------

KEY = "AQVN-secret-key-123"


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Api-Key wrong"),), (("authorization", f"Bearer {KEY}"),)],
    ids=["missing", "wrong-key", "key-as-bearer"],
)
async def test_bad_credentials_unauthenticated(
    server: ToneServer, address: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    server.script = ToneScript(api_key=KEY)
    outcome = await synthesize(address, [], metadata, half_close=False)
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED
    assert outcome.details == UNAUTHENTICATED_DETAILS
    assert KEY not in outcome.details
    assert outcome.audio == b""
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "credential", [f"Api-Key {KEY}", f"Api-key {KEY}", "Bearer iam-t1"], ids=str.split
)
async def test_good_credentials_accepted(server: ToneServer, address: str, credential: str) -> None:
    server.script = ToneScript(api_key=KEY, iam_token="iam-t1")
    outcome = await synthesize(address, [options(), text("abc ")], [("authorization", credential)])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.audio == server.expected_pcm(["abc "], RATE)


# --- argument checks ----------------------------------------------------------------------------

_CONTAINER = Request(
    options=tts_pb2.SynthesisOptions(
        voice="masha",
        output_audio_spec=tts_pb2.AudioFormatOptions(
            container_audio=tts_pb2.ContainerAudio(container_audio_type=tts_pb2.ContainerAudio.WAV)
        ),
    )
)


@pytest.mark.parametrize(
    ("requests", "phrase"),
    [
        ([options(voice="nobody"), text("a ")], "unknown voice"),
        ([_CONTAINER, text("a ")], "container_audio"),
        ([Request(options=tts_pb2.SynthesisOptions(voice="masha"))], "unset"),
        ([options(rate=7999)], "7999"),
        ([options(rate=48001)], "48001"),
        ([text("a "), options()], "first message"),
        ([options(), text("a "), options()], "only be sent once"),
        ([options(speed=3.5)], "speed"),
        ([options(pitch_shift=-1001.0)], "pitch_shift"),
        ([options(volume=1.5, loudness_normalization_type=tts_pb2.MAX_PEAK)], "MAX_PEAK"),
        ([options(volume=-150.0)], "LUFS"),
        ([options(), text("x" * 4000), text("y" * 1001)], "5000"),
        ([], "first message"),
    ],
    ids=[
        "voice", "container", "no-spec", "rate-low", "rate-high", "options-not-first",
        "options-twice", "speed", "pitch", "max-peak-volume", "lufs-volume", "too-long", "empty",
    ],
)  # fmt: skip
async def test_invalid_argument(
    server: ToneServer,
    address: str,
    requests: list[tts_pb2.StreamSynthesisRequest],
    phrase: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = await synthesize(address, requests, half_close=not requests)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert phrase in outcome.details
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.status == grpc.StatusCode.INVALID_ARGUMENT
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_valid_edges_accepted(server: ToneServer, address: str) -> None:
    requests = [
        options(rate=8000, speed=0.1, pitch_shift=1000.0, volume=-145.0, role="good"),
        text("a "),
    ]
    assert (await synthesize(address, requests)).code == grpc.StatusCode.OK
    peak = options(rate=48000, volume=1.0, loudness_normalization_type=tts_pb2.MAX_PEAK)
    assert (await synthesize(address, [peak, text("a ")])).code == grpc.StatusCode.OK


# --- server plumbing ---------------------------------------------------------------------------


async def test_wait_calls_times_out(server: ToneServer) -> None:
    with pytest.raises(TimeoutError):
        await server.wait_calls(1, 0.05)


async def test_unix_socket(tmp_path: Path) -> None:
    tone_server = ToneServer()
    path = f"unix:{tmp_path}/tone.sock"
    assert await asyncio.wait_for(tone_server.start(path), TIMEOUT) == path
    try:
        outcome = await synthesize(path, [options(), text("abc ")])
        assert outcome.audio == tone_server.expected_pcm(["abc "], RATE)
    finally:
        await asyncio.wait_for(tone_server.stop(), TIMEOUT)


async def test_cli_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.harness.tone_server", "--listen", "127.0.0.1:0",
        "--api-key", KEY, "--ms-per-char", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        match = re.search(rb"listening on (\S+)", line)
        assert match, line
        outcome = await synthesize(
            match.group(1).decode(), [options(), text("ab")], [("authorization", f"Api-Key {KEY}")]
        )
        assert len(outcome.audio) == 2 * 160 * 2
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        assert await asyncio.wait_for(process.stdout.read(), TIMEOUT) == b""
        rest = await asyncio.wait_for(process.stderr.read(), TIMEOUT)
        assert KEY.encode() not in rest
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), TIMEOUT)


# --- the pure helpers ----------------------------------------------------------------------------


def test_tone_generator_is_continuous_across_takes() -> None:
    whole = ToneGenerator(440.0, 0.5, RATE).take(1000)
    parts = ToneGenerator(440.0, 0.5, RATE)
    assert parts.take(333) + parts.take(1) + parts.take(666) == whole


def test_chunker_cycle_carries_over_between_splits() -> None:
    chunker = Chunker((3, 2))
    assert chunker.split(b"abcd") == [b"abc", b"d"]
    assert chunker.split(b"efghij") == [b"efg", b"hi", b"j"]
    with pytest.raises(ValueError, match="positive"):
        Chunker((0,))


def test_pacer_bounds() -> None:
    pacer = Pacer(first_chunk_delay=0.5, realtime_factor=2.0, jitter=0.0, rng=random.Random(0))
    pacer.piece_arrived(10.0, 0.0)
    assert pacer.due(1.0) == pytest.approx(11.0)
    assert pacer.due(2.0) == pytest.approx(11.5)
    pacer.piece_arrived(20.0, 2.0)  # late piece: paced from its arrival, not burst out
    assert pacer.due(3.0) == pytest.approx(20.5)
    fast = Pacer(first_chunk_delay=0.0, realtime_factor=0.0, jitter=0.1, rng=random.Random(1))
    fast.piece_arrived(5.0, 0.0)
    times = [fast.due(t) for t in range(10)]
    assert times == sorted(times)
    assert min(times) >= 5.0


# --- the pacer's bursty patterns: due times only, no clock ----------------------------------


def schedule(pacer: Pacer, chunk_s: float, chunks: int, first_end: float = 0.0) -> list[float]:
    """Due times of `chunks` chunks of `chunk_s` audio seconds each, the first ending at
    `first_end` + `chunk_s`."""
    return [pacer.due(first_end + (k + 1) * chunk_s) for k in range(chunks)]


def test_new_patterns_are_off_by_default() -> None:
    script = ToneScript()
    assert (script.drift, script.per_piece_delay, script.stall_at_s) == (0.0, False, None)
    assert script.piece_pause_s == (0.0, 0.0)
    plain = Pacer(0.2, 1.2, 0.08, random.Random(7))
    explicit = Pacer(
        0.2,
        1.2,
        0.08,
        random.Random(7),
        drift=0.0,
        per_piece_delay=False,
        stall_at_s=None,
        piece_pause_s=(0.0, 0.0),
    )
    for pacer in (plain, explicit):
        pacer.piece_arrived(1.0, 0.0)
        pacer.piece_arrived(1.0, 2.0)  # early second piece: no new delay
    assert schedule(plain, 0.05, 80) == schedule(explicit, 0.05, 80)


def test_jitter_stays_within_its_bounds_around_the_schedule_and_is_seeded() -> None:
    def times(seed: int) -> list[float]:
        pacer = Pacer(0.2, 1.2, 0.08, random.Random(seed))
        pacer.piece_arrived(0.0, 0.0)
        return schedule(pacer, 0.05, 200)

    base = [0.2 + (k + 1) * 0.05 / 1.2 for k in range(200)]
    late = [at - on for at, on in zip(times(3), base, strict=True)]
    assert all(-0.08 <= x <= 0.08 + 1e-9 for x in late)
    assert max(late) > 0.04  # both ways, not a one-sided offset
    assert min(late) < -0.04
    assert times(3) == times(3)
    assert times(3) != times(4)


def test_drift_is_a_reflected_random_walk_of_lateness() -> None:
    chunk_s, factor, step = 0.05, 1.2, 0.08
    pacer = Pacer(0.2, factor, 0.0, random.Random(11), drift=step)
    pacer.piece_arrived(0.0, 0.0)
    times = schedule(pacer, chunk_s, 400)
    # The same walk from the same seed, independently: due = schedule + walk, never before
    # the previous chunk.
    rng, walk, previous = random.Random(11), 0.0, -math.inf
    walks: list[float] = []
    for k in range(400):
        walk = abs(walk + rng.uniform(-step, step))
        walks.append(walk)
        previous = max(0.2 + (k + 1) * chunk_s / factor + walk, previous)
        assert times[k] == pytest.approx(previous)
    assert all(abs(b - a) <= step for a, b in itertools.pairwise([0.0, *walks]))
    assert min(walks) >= 0.0
    # Lateness accumulates well past one step, later comes back near the schedule (this
    # seed's walk; any seed's does, given chunks enough).
    far = next(k for k, late in enumerate(walks) if late > 3 * step)
    assert min(walks[far:]) < step
    again = Pacer(0.2, factor, 0.0, random.Random(11), drift=step)
    again.piece_arrived(0.0, 0.0)
    assert schedule(again, chunk_s, 400) == times


def test_per_piece_delay_waits_again_for_every_piece() -> None:
    delay, factor, chunk_s = 0.2, 1.2, 0.25
    pacer = Pacer(delay, factor, 0.0, random.Random(0), per_piece_delay=True)
    pacer.piece_arrived(10.0, 0.0)
    first = schedule(pacer, chunk_s, 4)  # audio 0-1 s
    assert first == pytest.approx([10.0 + delay + (k + 1) * chunk_s / factor for k in range(4)])
    pacer.piece_arrived(10.0, 1.0)  # arrived long before piece 0's audio was due
    second = schedule(pacer, chunk_s, 4, first_end=1.0)  # audio 1-2 s
    assert second[0] == pytest.approx(first[-1] + delay + chunk_s / factor)
    assert [b - a for a, b in itertools.pairwise(second)] == pytest.approx(
        [chunk_s / factor] * 3
    )  # within a piece: real-time factor unchanged
    pacer.piece_arrived(20.0, 2.0)  # arrived after its audio was due: delay from arrival
    assert pacer.due(2.25) == pytest.approx(20.0 + delay + chunk_s / factor)
    without = Pacer(delay, factor, 0.0, random.Random(0))
    without.piece_arrived(10.0, 0.0)
    schedule(without, chunk_s, 4)
    without.piece_arrived(10.0, 1.0)
    assert without.due(1.25) == pytest.approx(first[-1] + chunk_s / factor)


def test_per_piece_delay_as_fast_as_possible() -> None:
    pacer = Pacer(0.2, 0.0, 0.0, random.Random(0), per_piece_delay=True)
    pacer.piece_arrived(10.0, 0.0)
    assert pacer.due(1.0) == pytest.approx(10.2)
    pacer.piece_arrived(10.1, 1.0)
    assert pacer.due(2.0) == pytest.approx(10.4)
    pacer.piece_arrived(11.0, 2.0)
    assert pacer.due(3.0) == pytest.approx(11.2)


def test_piece_pause_waits_a_short_draw_before_each_later_piece() -> None:
    delay, factor, chunk_s = 0.2, 1.2, 0.25
    pacer = Pacer(delay, factor, 0.0, random.Random(5), piece_pause_s=(0.05, 0.15))
    pacer.piece_arrived(10.0, 0.0)  # the first piece waits the first-chunk delay only
    first = schedule(pacer, chunk_s, 4)  # audio 0-1 s
    assert first == pytest.approx([10.0 + delay + (k + 1) * chunk_s / factor for k in range(4)])
    draws = random.Random(5)
    for piece in (1, 2):
        pacer.piece_arrived(10.0, float(piece))  # long before its audio is due
        pause = draws.uniform(0.05, 0.15)
        assert 0.05 <= pause <= 0.15
        times = schedule(pacer, chunk_s, 4, first_end=float(piece))
        assert times[0] == pytest.approx(first[-1] + pause + chunk_s / factor)
        assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx(
            [chunk_s / factor] * 3
        )  # within a piece: real-time factor unchanged
        first = times
    late = Pacer(delay, 0.0, 0.0, random.Random(5), piece_pause_s=(0.1, 0.1))
    late.piece_arrived(10.0, 0.0)
    late.piece_arrived(11.0, 1.0)  # as fast as possible: the pause counts from arrival
    assert late.due(2.0) == pytest.approx(11.1)
    with pytest.raises(ValueError, match="piece_pause_s"):
        Pacer(delay, factor, 0.0, random.Random(5), piece_pause_s=(0.2, 0.1))


def test_stall_pauses_once_then_catches_up_with_the_schedule() -> None:
    pacer = Pacer(0.0, 1.0, 0.0, random.Random(0), stall_at_s=1.0, stall_for_s=0.3)
    pacer.piece_arrived(0.0, 0.0)
    times = schedule(pacer, 0.25, 12)
    # The chunk ending exactly at 1.0 s is before the stall; the next one waits 0.3 s, the
    # one that fell due meanwhile follows at once, then the schedule resumes.
    assert times == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.55, 1.55, 1.75, 2.0, 2.25, 2.5,
                                   2.75, 3.0])  # fmt: skip


async def test_patterns_keep_the_audio_and_show_on_the_wire(
    server: ToneServer, address: str
) -> None:
    pieces = ["abc ", "defg "]
    server.script = ToneScript(
        first_chunk_delay=0.2, per_piece_delay=True, chunk_bytes=(100_000,)
    )  # one chunk per piece
    outcome = await synthesize(address, [options(), *(text(p) for p in pieces)])
    assert outcome.audio == server.expected_pcm(pieces, RATE)
    (record,) = await server.wait_calls(1, TIMEOUT)
    assert record.first_request_at is not None
    assert len(record.chunk_times) == 2
    assert record.chunk_times[1] - record.first_request_at >= 0.39  # two delays
    server.script = ToneScript(
        realtime_factor=8.0, drift=0.01, stall_at_s=0.5, stall_for_s=0.3, chunk_bytes=(3200,)
    )
    outcome = await synthesize(address, [options(), text(TEXT_1S)])
    assert outcome.audio == server.expected_pcm([TEXT_1S], RATE)
    record = (await server.wait_calls(2, TIMEOUT))[1]
    # 3200 bytes = 0.1 s at 16 kHz: chunk 5 (0.5-0.6 s) is the first past the stall point.
    assert record.chunk_times[5] - record.chunk_times[4] >= 0.29
