"""The local Piper server, spoken to through the daemon's own SpeechKit client and
through plain grpc clients shaped like the one in SpeechKit's documentation."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from player.config import LocalSettings, SpeechKitSettings, VoiceSettings
from player.errors import SynthesisError
from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2_grpc
from player.local.engine import PiperEngine, default_model
from player.local.server import LocalServer
from player.synthesis.interface import Spoken
from player.synthesis.speechkit import SpeechKitClient
from tests.e2e.common import TIMEOUT, pieces
from tests.harness import audio_analysis as aa

ONE = "The next train to the airport leaves from platform four."
THREE = (
    "Attention, please. The museum closes in fifteen minutes. "
    "Please make your way to the nearest exit."
)
# Spoken English runs at 10 to 20 characters a second; anything far outside is not speech.
MIN_S_PER_CHAR, MAX_S_PER_CHAR = 0.03, 0.15


@pytest.fixture(scope="session")
def engine() -> PiperEngine:
    """The default voice, loaded once for the whole session (as the server keeps it)."""
    return PiperEngine(LocalSettings())


@pytest.fixture
async def server(engine: PiperEngine) -> AsyncIterator[LocalServer]:
    local = LocalServer(engine, workers=2)
    await local.start("127.0.0.1:0")
    yield local
    await local.stop()


@pytest.fixture
async def channel(server: LocalServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch


def synthesizer(channel: grpc.aio.Channel, rate: int, **voice: Any) -> SpeechKitClient:
    return SpeechKitClient(
        channel, SpeechKitSettings(endpoint="local", tls=False), VoiceSettings(**voice), rate
    )


class Heard:
    """A sink that keeps every frame and when it came."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.arrived = asyncio.Event()
        self.texts: list[Spoken] = []

    async def audio(self, frames: np.ndarray) -> None:
        self.frames.append(frames.copy())
        self.times.append(time.monotonic())
        self.arrived.set()

    def spoken(self, spoken: Spoken) -> None:
        self.texts.append(spoken)

    async def withdraw(self, frames: int) -> int:
        raise AssertionError("nothing here resumes a call")

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)


def assert_speech(audio: np.ndarray, rate: int, text: str) -> None:
    seconds = len(audio) / rate
    assert MIN_S_PER_CHAR * len(text) <= seconds <= MAX_S_PER_CHAR * len(text), seconds
    assert aa.rms(audio) > 0.02, "the audio is (nearly) silent"
    spans = aa.sound_spans(audio, rate)
    assert sum(end - start for start, end in spans) > 0.5 * len(audio), "mostly silence"


@pytest.mark.parametrize("rate", [16000, 48000])
async def test_speaks_real_speech_at_the_requested_rate(
    channel: grpc.aio.Channel, rate: int
) -> None:
    heard = Heard()
    async with asyncio.timeout(TIMEOUT):
        result = await synthesizer(channel, rate).synthesize(pieces(THREE + " "), heard)
    assert_speech(heard.pcm, rate, THREE)
    assert result.frames == len(heard.pcm)
    assert result.request_id  # the server tags calls like the cloud does
    # Speech has its energy in the voice band, whatever the rate it was resampled to.
    assert 80 < aa.dominant_frequency(heard.pcm, rate) < 4000


async def test_first_sentence_is_heard_before_the_next_one_is_even_sent(
    channel: grpc.aio.Channel,
) -> None:
    heard = Heard()
    sentences = ["Attention, please. ", "The museum closes in fifteen minutes. "]
    sent: list[float] = []

    async def paced() -> AsyncIterator[str]:
        yield sentences[0]
        sent.append(time.monotonic())
        await asyncio.wait_for(heard.arrived.wait(), TIMEOUT)
        sent.append(time.monotonic())
        yield sentences[1]

    async with asyncio.timeout(TIMEOUT):
        await synthesizer(channel, 24000).synthesize(paced(), heard)
    assert heard.times[0] < sent[1]
    assert_speech(heard.pcm, 24000, "".join(sentences))


async def raw_call(
    channel: grpc.aio.Channel, requests: list[tts_pb2.StreamSynthesisRequest]
) -> list[tts_pb2.StreamSynthesisResponse]:
    stub = tts_service_pb2_grpc.SynthesizerStub(channel)
    call = stub.StreamSynthesis(iter(requests))
    async with asyncio.timeout(TIMEOUT):
        return [response async for response in call]


def raw_options(rate: int = 22050, **fields: Any) -> tts_pb2.StreamSynthesisRequest:
    spec = tts_pb2.AudioFormatOptions(
        raw_audio=tts_pb2.RawAudio(
            audio_encoding=tts_pb2.RawAudio.LINEAR16_PCM, sample_rate_hertz=rate
        )
    )
    return tts_pb2.StreamSynthesisRequest(
        options=tts_pb2.SynthesisOptions(output_audio_spec=spec, **fields)
    )


def text(value: str) -> tts_pb2.StreamSynthesisRequest:
    return tts_pb2.StreamSynthesisRequest(synthesis_input=tts_pb2.SynthesisInput(text=value))


FORCE = tts_pb2.StreamSynthesisRequest(force_synthesis=tts_pb2.ForceSynthesisEvent())


def pcm(responses: list[Any]) -> np.ndarray:
    data = b"".join(r.audio_chunk.data for r in responses)
    return np.frombuffer(data, dtype="<i2")


async def test_chunks_carry_text_and_contiguous_timing(channel: grpc.aio.Channel) -> None:
    responses = await raw_call(channel, [raw_options(16000), text(THREE)])
    texts = [r.text_chunk.text for r in responses if r.text_chunk.text]
    assert texts == [
        "Attention, please.",
        "The museum closes in fifteen minutes.",
        "Please make your way to the nearest exit.",
    ]
    assert len(responses) > 3, "audio was not cut into chunks"
    position = 0
    for response in responses:
        assert response.start_ms == pytest.approx(position, abs=1)
        assert response.length_ms == pytest.approx(len(response.audio_chunk.data) / 32, abs=1)
        position = response.start_ms + response.length_ms
    assert position == pytest.approx(len(pcm(responses)) / 16, abs=2)


async def test_force_synthesis_speaks_an_unfinished_sentence_at_once(
    channel: grpc.aio.Channel,
) -> None:
    stub = tts_service_pb2_grpc.SynthesizerStub(channel)
    call = stub.StreamSynthesis()
    async with asyncio.timeout(TIMEOUT):
        await call.write(raw_options())
        await call.write(text("no full stop here "))
        await call.write(FORCE)
        first = await call.read()  # before the stream is half-closed
        assert isinstance(first, tts_pb2.StreamSynthesisResponse)
        assert first.text_chunk.text == "no full stop here"
        await call.done_writing()
        rest = []
        while (response := await call.read()) is not grpc.aio.EOF:
            assert isinstance(response, tts_pb2.StreamSynthesisResponse)
            rest.append(response)
    assert_speech(pcm([first, *rest]).astype(np.float32) / 32768, 22050, "no full stop here")


async def test_half_close_flushes_the_rest(channel: grpc.aio.Channel) -> None:
    responses = await raw_call(channel, [raw_options(), text("Done. And the rest")])
    texts = [r.text_chunk.text for r in responses if r.text_chunk.text]
    assert texts == ["Done.", "And the rest"]


async def test_speed_and_volume_shape_the_audio(channel: grpc.aio.Channel) -> None:
    normal = pcm(await raw_call(channel, [raw_options(), text(ONE)]))
    fast = pcm(await raw_call(channel, [raw_options(speed=2.0), text(ONE)]))
    assert len(fast) < 0.7 * len(normal)
    peak = pcm(
        await raw_call(
            channel,
            [raw_options(loudness_normalization_type=tts_pb2.MAX_PEAK, volume=0.5), text(ONE)],
        )
    )
    assert np.abs(peak).max() / 32767 == pytest.approx(0.5, abs=0.03)
    quiet = pcm(await raw_call(channel, [raw_options(volume=-35.0), text(ONE)]))
    assert aa.rms(quiet) < 0.3 * aa.rms(normal)  # -35 LUFS against the default -19


def container(
    kind: tts_pb2.ContainerAudio.ContainerAudioType.ValueType,
) -> tts_pb2.AudioFormatOptions:
    return tts_pb2.AudioFormatOptions(
        container_audio=tts_pb2.ContainerAudio(container_audio_type=kind)
    )


def raw(
    encoding: tts_pb2.RawAudio.AudioEncoding.ValueType, rate: int
) -> tts_pb2.AudioFormatOptions:
    return tts_pb2.AudioFormatOptions(
        raw_audio=tts_pb2.RawAudio(audio_encoding=encoding, sample_rate_hertz=rate)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (container(tts_pb2.ContainerAudio.OGG_OPUS), "OGG_OPUS"),
        (container(tts_pb2.ContainerAudio.MP3), "MP3"),
        (raw(tts_pb2.RawAudio.LINEAR16_PCM, 7999), "7999"),
        (raw(tts_pb2.RawAudio.AUDIO_ENCODING_UNSPECIFIED, 16000), "LINEAR16_PCM"),
    ],
    ids=["ogg", "mp3", "rate", "encoding"],
)
async def test_other_formats_are_refused(
    channel: grpc.aio.Channel, spec: tts_pb2.AudioFormatOptions, message: str
) -> None:
    request = tts_pb2.StreamSynthesisRequest(
        options=tts_pb2.SynthesisOptions(output_audio_spec=spec)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_call(channel, [request, text("Hello. ")])
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


async def test_bad_requests_get_the_clouds_answers(channel: grpc.aio.Channel) -> None:
    for requests, message in [
        ([raw_options(voice="nobody"), text("Hi. ")], "unknown voice 'nobody'"),
        ([text("Hi. ")], "first message must carry options"),
        ([raw_options(), raw_options()], "options can only be sent once"),
        ([raw_options(), text("a" * 5001)], "5000 characters"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw_call(channel, requests)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in (caught.value.details() or "")


async def test_session_reports_a_refusal_as_a_synthesis_error(channel: grpc.aio.Channel) -> None:
    with pytest.raises(SynthesisError, match="unknown voice 'nobody'"):
        async with asyncio.timeout(TIMEOUT):
            await synthesizer(channel, 16000, voice="nobody").synthesize(pieces("Hi. "), Heard())


async def test_without_an_audio_spec_it_sends_wav_like_the_cloud(
    channel: grpc.aio.Channel,
) -> None:
    request = tts_pb2.StreamSynthesisRequest(options=tts_pb2.SynthesisOptions(voice="masha"))
    responses = await raw_call(channel, [request, text("Hello! "), text(ONE)])
    with wave.open(io.BytesIO(b"".join(r.audio_chunk.data for r in responses))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert_speech(frames.astype(np.float32) / 32768, 22050, "Hello! " + ONE)
    assert responses[0].start_ms == 0  # the header does not count as audio


async def test_utterance_synthesis_with_hints(channel: grpc.aio.Channel) -> None:
    stub = tts_service_pb2_grpc.SynthesizerStub(channel)
    request = tts_pb2.UtteranceSynthesisRequest(
        text=THREE,
        hints=[tts_pb2.Hints(voice="john"), tts_pb2.Hints(speed=1.0)],
        output_audio_spec=raw(tts_pb2.RawAudio.LINEAR16_PCM, 16000),
    )
    async with asyncio.timeout(TIMEOUT):
        responses = [r async for r in stub.UtteranceSynthesis(request)]
    assert len([r for r in responses if r.text_chunk.text]) == 3
    assert_speech(pcm(responses).astype(np.float32) / 32768, 16000, THREE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(TIMEOUT):
            _ = [r async for r in stub.UtteranceSynthesis(tts_pb2.UtteranceSynthesisRequest())]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_long_sentence_does_not_hold_up_another_call(channel: grpc.aio.Channel) -> None:
    long_heard, short_heard = Heard(), Heard()
    long_text = "This sentence goes on and on, " * 12 + "and ends. "
    long_call = asyncio.create_task(
        synthesizer(channel, 16000).synthesize(pieces(long_text), long_heard)
    )
    await asyncio.sleep(0)  # let the long call start first
    async with asyncio.timeout(TIMEOUT):
        await synthesizer(channel, 16000).synthesize(pieces("Hi. "), short_heard)
        assert not long_heard.frames, "the short call waited for the long one"
        await long_call


async def test_configured_voice_names_are_accepted(tmp_path: Path) -> None:
    engine = PiperEngine(LocalSettings(voices=(("robot", default_model()),)))
    local = LocalServer(engine)
    await local.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(local.address) as ch:
            responses = await raw_call(ch, [raw_options(voice="robot"), text("Hello. ")])
        assert len(pcm(responses)) > 0
    finally:
        await local.stop()


SEED_TEXTS = [
    "Hello! ",
    "I can help you select your order and arrange a delivery. ",
    "What would you like to ask?",
]


@pytest.fixture
def serve_local(tmp_path: Path) -> Iterator[str]:
    """`speechkit-player serve-local` as a process on a Unix socket; yields its address."""
    import subprocess

    address = f"unix:{tmp_path / 'tts.sock'}"
    config = tmp_path / "player.toml"
    config.write_text("")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "player",
            "serve-local",
            "--config",
            str(config),
            "--listen",
            address,
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("YANDEX_")},
        stderr=subprocess.PIPE,
    )
    try:
        with grpc.insecure_channel(address) as ch:
            grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        yield address
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err


def test_serve_local_answers_the_documentations_client(serve_local: str) -> None:
    """The how-to's client, unchanged but for the address and our generated modules."""
    with grpc.insecure_channel(serve_local) as channel:
        stub = tts_service_pb2_grpc.SynthesizerStub(channel)
        options = tts_pb2.SynthesisOptions(
            voice="masha",
            role="good",
            output_audio_spec=tts_pb2.AudioFormatOptions(
                container_audio=tts_pb2.ContainerAudio(
                    container_audio_type=tts_pb2.ContainerAudio.ContainerAudioType.WAV
                )
            ),
        )

        def request_generator() -> Iterator[tts_pb2.StreamSynthesisRequest]:
            yield tts_pb2.StreamSynthesisRequest(options=options)
            for piece in SEED_TEXTS:
                yield text(piece)

        chunks = [
            r.audio_chunk.data
            for r in stub.StreamSynthesis(
                request_generator(), metadata=(("authorization", "Api-key unused"),)
            )
            if r.audio_chunk.data
        ]
    with wave.open(io.BytesIO(b"".join(chunks))) as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert rate == 22050
    assert_speech(frames.astype(np.float32) / 32768, rate, "".join(SEED_TEXTS))
