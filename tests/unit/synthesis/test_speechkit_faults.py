"""SpeechKitClient against the tone server in-process: a server that hangs or stalls
fails the call in bounded time, one that is only slow (or a caller with nothing more
to say) does not; text a service sends ahead of its audio is given with that audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import numpy as np
import pytest

from player.audio.ring import Frames
from player.config import SpeechKitSettings, VoiceSettings
from player.errors import SynthesisError
from player.generated.speechkit.tts.v3 import tts_pb2
from player.synthesis.fallback import Fallback
from player.synthesis.interface import FORCE, Piece, Spoken
from player.synthesis.speechkit import SpeechKitClient
from tests.harness.tone_server import ToneScript, ToneServer
from tests.harness.tone_synth import piece_samples

RATE = 16000
TIMEOUT = 15.0
"""Bound on any one call here; the bounds under test are a second or less."""
BOUND = 0.5
"""first_audio_timeout_s and stall_timeout_s of the clients here (the smallest the config
allows), so a silence of IDLE, twice that, is well past either."""
IDLE = 2 * BOUND
SENTENCES = ("Attention, please. ", "The museum closes soon. ", "Thank you. ")


class Sink:
    """Keeps what a call gives it, in order. `room_after` makes the first write wait, as
    a full or paused output does."""

    def __init__(self, room_after: float = 0.0) -> None:
        self.chunks: list[Frames] = []
        self.texts: list[tuple[Spoken, int]] = []
        """Each text, with the frames already given when it came."""
        self.room_after = room_after
        self.frames = 0
        self._grew = asyncio.Event()

    async def audio(self, frames: Frames) -> None:
        if self.room_after and not self.chunks:
            await asyncio.sleep(self.room_after)
        self.chunks.append(frames.copy())
        self.frames += len(frames)
        self._grew.set()

    def spoken(self, spoken: Spoken) -> None:
        self.texts.append((spoken, self.frames))

    async def withdraw(self, frames: int) -> int:
        raise AssertionError("nothing here resumes a call")

    async def wait_frames(self, frames: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.frames < frames:
                self._grew.clear()
                await self._grew.wait()


def samples(*texts: str) -> int:
    """Frames the default script speaks for these pieces."""
    return sum(piece_samples(len(text), ToneScript().ms_per_char, RATE) for text in texts)


async def given(*items: Piece) -> AsyncIterator[Piece]:
    for item in items:
        yield item


@asynccontextmanager
async def client_of(script: ToneScript) -> AsyncIterator[tuple[SpeechKitClient, ToneServer]]:
    """A client with BOUND for both timeouts, and the tone server it speaks to."""
    async with ToneServer(script) as server:
        settings = SpeechKitSettings(
            endpoint=server.address, tls=False, first_audio_timeout_s=BOUND, stall_timeout_s=BOUND
        )
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield SpeechKitClient(channel, settings, VoiceSettings(), RATE), server


async def fails_silent(client: SpeechKitClient, pieces: AsyncIterator[Piece], sink: Sink) -> str:
    """The call's one-line reason, checking it failed as a silent server does."""
    with pytest.raises(SynthesisError) as caught:
        async with asyncio.timeout(TIMEOUT):
            await client.synthesize(pieces, sink)
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- a hung server ------------------------------------------------------------------------


async def test_a_server_that_never_answers_fails_the_call_within_the_first_audio_bound() -> None:
    async with client_of(ToneScript(never_answer=True)) as (client, server):
        began = time.monotonic()
        message = await fails_silent(client, given(*SENTENCES), Sink())
        took = time.monotonic() - began
        (call,) = await server.wait_calls(1, TIMEOUT)
    assert message == "SpeechKit sent no audio within 0.5 s; gave up"
    assert BOUND - 0.05 <= took < BOUND + 5.0  # generous: shared machines stall
    assert call.texts == list(SENTENCES)
    assert call.status is grpc.StatusCode.CANCELLED  # the call is ended, not left open


async def test_streamed_text_to_a_hung_server_fails_although_the_input_stays_open() -> None:
    never = asyncio.Event()

    async def streamed() -> AsyncIterator[Piece]:
        yield SENTENCES[0]
        yield FORCE
        await never.wait()  # the caller is still thinking: only the server's debt counts
        yield SENTENCES[1]

    async with client_of(ToneScript(never_answer=True)) as (client, _server):
        message = await fails_silent(client, streamed(), Sink())
    assert message == "SpeechKit sent no audio within 0.5 s; gave up"


async def test_a_stall_in_the_middle_fails_the_call_and_keeps_what_came() -> None:
    stall_at = 2 * samples(SENTENCES[0])  # bytes: the first sentence's audio
    async with client_of(ToneScript(stall_after_bytes=stall_at)) as (client, _server):
        sink = Sink()
        message = await fails_silent(client, given(*SENTENCES), sink)
    assert message == "SpeechKit stopped sending audio for 0.5 s; gave up"
    assert sink.frames == samples(SENTENCES[0])
    assert [spoken.text for spoken, _ in sink.texts] == [SENTENCES[0]]


async def test_a_server_that_sends_all_audio_but_never_ends_the_stream_fails() -> None:
    everything = 2 * samples(*SENTENCES)
    async with client_of(ToneScript(stall_after_bytes=everything)) as (client, _server):
        sink = Sink()
        message = await fails_silent(client, given(*SENTENCES), sink)
    assert message == "SpeechKit stopped sending audio for 0.5 s; gave up"
    assert sink.frames == samples(*SENTENCES)


async def test_a_silent_cloud_falls_back_to_the_local_synthesizer() -> None:
    async with (
        client_of(ToneScript(never_answer=True)) as (cloud, _hung),
        client_of(ToneScript(frequency_hz=660.0)) as (local, local_server),
    ):
        sink = Sink()
        async with asyncio.timeout(TIMEOUT):
            result = await Fallback(cloud, local).synthesize(given(*SENTENCES), sink)
        (call,) = await local_server.wait_calls(1, TIMEOUT)
    assert result.fallback
    assert call.texts == list(SENTENCES)
    assert sink.frames == samples(*SENTENCES)


# --- slow is not dead -----------------------------------------------------------------------


async def test_a_slow_server_within_its_bounds_is_waited_for() -> None:
    script = ToneScript(first_chunk_delay=0.3, stall_after_bytes=4000, stall_s=0.3)
    async with client_of(script) as (client, _server):
        sink = Sink()
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(given(*SENTENCES), sink)
    assert result.frames == sink.frames == samples(*SENTENCES)


async def test_a_caller_with_nothing_more_to_say_is_not_a_stalled_server() -> None:
    sink = Sink()

    async def streamed() -> AsyncIterator[Piece]:
        yield SENTENCES[0]
        yield FORCE
        await sink.wait_frames(samples(SENTENCES[0]))
        yield FORCE  # a pause in the input forces again, with nothing new to speak
        # All that was sent is answered; an LLM thinking this long is not the server's fault.
        await asyncio.sleep(IDLE)
        yield SENTENCES[1]

    async with client_of(ToneScript()) as (client, _server):
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(streamed(), sink)
    assert result.frames == samples(*SENTENCES[:2])


async def test_text_a_service_holds_for_more_context_is_not_owed_until_forced() -> None:
    sink = Sink()

    async def streamed() -> AsyncIterator[Piece]:
        yield "The museum "
        # A service that waits for the rest of the sentence is right to send nothing yet.
        await asyncio.sleep(IDLE)
        yield "closes soon. "
        yield FORCE

    async with client_of(ToneScript(hold_until_force=True)) as (client, _server):
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(streamed(), sink)
    assert result.frames == samples("The museum closes soon. ")


async def test_time_spent_waiting_for_room_in_the_output_is_not_the_servers() -> None:
    sink = Sink(room_after=IDLE)  # a paused output takes nothing for a while
    async with client_of(ToneScript()) as (client, _server):
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(given(*SENTENCES), sink)
    assert result.frames == samples(*SENTENCES)


# --- text ahead of its audio, and pieces with nothing to say --------------------------------


async def test_text_sent_ahead_of_its_audio_is_given_with_that_audio() -> None:
    script = ToneScript(text_only_first=True, first_chunk_delay=0.2, realtime_factor=4.0)
    async with client_of(script) as (client, server):
        sink = Sink()
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(given(*SENTENCES), sink)
        (call,) = await server.wait_calls(1, TIMEOUT)
    assert call.responses[0].chunk_type == tts_pb2.StreamSynthesisResponse.TEXT_ONLY
    assert result.frames == samples(*SENTENCES)
    assert [spoken.text for spoken, _ in sink.texts] == list(SENTENCES)
    for k, (spoken, given_before) in enumerate(sink.texts):
        starts_at = samples(*SENTENCES[:k])
        assert spoken.start_ms == starts_at * 1000 // RATE
        # Given only once some of its own audio was: the heard-text mark sits at audio
        # that exists, and fires when that is played.
        assert given_before > starts_at


async def test_a_piece_with_nothing_to_say_ends_quietly() -> None:
    script = ToneScript(unspeakable_pieces=frozenset({0}))
    sink = Sink()

    async def streamed() -> AsyncIterator[Piece]:
        yield "*** "
        yield FORCE
        # Answered with "nothing to say": the server owes nothing while the caller idles.
        await asyncio.sleep(IDLE)
        yield SENTENCES[0]

    async with client_of(script) as (client, server):
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(streamed(), sink)
        (call,) = await server.wait_calls(1, TIMEOUT)
    assert call.texts == ["*** ", SENTENCES[0]]
    assert result.frames == samples(SENTENCES[0])
    assert [spoken.text for spoken, _ in sink.texts] == [SENTENCES[0]]
    expected = np.frombuffer(server.expected_pcm([SENTENCES[0]], RATE), "<i2") / 32768.0
    assert np.allclose(np.concatenate(sink.chunks), expected, atol=1e-4)


async def test_an_utterance_with_nothing_to_say_at_all_is_not_an_error() -> None:
    script = ToneScript(unspeakable_pieces=frozenset({0, 1}))
    async with client_of(script) as (client, _server):
        sink = Sink()
        async with asyncio.timeout(TIMEOUT):
            result = await client.synthesize(given("*** ", "--- "), sink)
    assert result.frames == 0
    assert sink.texts == []
