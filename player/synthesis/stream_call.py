"""One StreamSynthesis RPC as it runs: the writer's and the reader's halves, what came
back, and how long the server may stay silent while it owes audio.

`player.synthesis.speechkit.SpeechKitClient` opens the call and turns its failures into
one-line reasons; this module only moves pieces out and audio in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Literal

import grpc

from player.audio.ring import Frames
from player.config import SpeechKitSettings
from player.generated.speechkit.tts.v3 import tts_pb2
from player.synthesis.interface import FORCE, CallResult, Piece, Sink, Spoken, WordTiming
from player.synthesis.pcm import Linear16Decoder

_LOGGER = logging.getLogger(__name__)

_Response = tts_pb2.StreamSynthesisResponse


def _spoken(response: _Response) -> Spoken:
    words = tuple(WordTiming(w.word, w.start_ms, w.length_ms) for w in response.word_timings)
    return Spoken(response.text_chunk.text, response.start_ms, words)


def _request(piece: Piece) -> tts_pb2.StreamSynthesisRequest:
    if piece is FORCE:
        return tts_pb2.StreamSynthesisRequest(force_synthesis=tts_pb2.ForceSynthesisEvent())
    return tts_pb2.StreamSynthesisRequest(synthesis_input=tts_pb2.SynthesisInput(text=piece))


def metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str:
    for name, value in metadata or ():
        if name == key:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return ""


class Silent(Exception):
    """The server owed audio and sent nothing for too long."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
        """The config key of the bound it overstayed."""


class StreamCall:
    """One StreamSynthesis RPC: the writer's and the reader's halves, and what came.

    The server owes an answer once it was asked to speak text: by a force_synthesis or
    the half-close after text it has not answered yet (text alone may be held by a
    service waiting for more context, which is not a fault). After the half-close it owes
    at least the end of the stream. While it owes, the reader's deadline runs: the first
    audio within first_audio_timeout_s, then no silence over stall_timeout_s. Audio that
    came after the text was sent counts as its answer, so a caller that simply has no
    more text to send never trips it. Time spent waiting for room in the sink (a full or
    paused output) is ours and stops the clock.
    """

    def __init__(
        self,
        rpc: grpc.aio.StreamStreamCall[tts_pb2.StreamSynthesisRequest, _Response],
        speechkit: SpeechKitSettings,
        samplerate: int,
    ) -> None:
        self.rpc = rpc
        self._first_audio_timeout = speechkit.first_audio_timeout_s
        self._stall_timeout = speechkit.stall_timeout_s
        self._samplerate = samplerate
        self._started = time.monotonic()
        self._decoder = Linear16Decoder()
        self._frames = 0
        self._first_audio: float | None = None
        self._input_done = False
        self._unanswered = False
        """Text was sent after the last audio (or unspeakable answer) arrived."""
        self._owed_since: float | None = None
        """Loop time the server's current debt began; None while it owes nothing."""
        self._in_sink = False
        self._deadline: asyncio.Timeout | None = None
        self._held: list[Spoken] = []
        """TEXT_ONLY responses' text, waiting for the audio that speaks it."""

    async def send(self, options: tts_pb2.SynthesisOptions, pieces: AsyncIterator[Piece]) -> None:
        try:
            await self.rpc.write(tts_pb2.StreamSynthesisRequest(options=options))
            async for piece in pieces:
                # Counted before the write: a server that never takes it owes it all the same.
                self._sent(piece)
                await self.rpc.write(_request(piece))
            self._input_done = True
            self._owe()
            await self.rpc.done_writing()
        except asyncio.InvalidStateError:
            # The server ended the call before we were done (a rejected key, an
            # abort): the reader gets its status.
            pass

    def _sent(self, piece: Piece) -> None:
        if piece is not FORCE:
            self._unanswered = True
        elif self._unanswered:
            self._owe()

    def _owe(self) -> None:
        if self._owed_since is None:
            self._owed_since = asyncio.get_running_loop().time()
            self._arm()

    def _heard(self, what: Literal["answer", "text ahead", "other"]) -> None:
        """A response came: an answer to what was sent before it (audio, or nothing to
        say), text whose audio is still to come, or anything else."""
        now = asyncio.get_running_loop().time()
        if what == "answer":
            self._unanswered = False
            self._owed_since = now if self._input_done else None
        elif self._owed_since is None:
            if what == "text ahead":
                self._owed_since = now
        elif self._first_audio is not None:
            self._owed_since = now
        # Before the first audio nothing but audio moves its deadline: a server that
        # only ever sends text is as good as a dead one.
        self._arm()

    def _arm(self) -> None:
        deadline = self._deadline
        if deadline is None or deadline.expired():
            return  # the reader is not reading (yet, or any more)
        if self._owed_since is None or self._in_sink:
            deadline.reschedule(None)
            return
        bound = self._first_audio_timeout if self._first_audio is None else self._stall_timeout
        deadline.reschedule(self._owed_since + bound)

    def _silent(self) -> Silent:
        if self._first_audio is None:
            return Silent(
                f"SpeechKit sent no audio within {self._first_audio_timeout:g} s; gave up",
                "first_audio_timeout_s",
            )
        return Silent(
            f"SpeechKit stopped sending audio for {self._stall_timeout:g} s; gave up",
            "stall_timeout_s",
        )

    async def receive(self, sink: Sink) -> None:
        """Pass audio and text to ``sink``; raises Silent when the server owes audio and
        stays silent past its bound."""
        try:
            async with asyncio.timeout(None) as deadline:
                self._deadline = deadline
                self._arm()
                async for response in self.rpc:
                    await self._take(response, sink)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise self._silent() from None
        finally:
            self._deadline = None
        if self._held:
            _LOGGER.debug("the stream ended before the audio of %d text chunk(s)", len(self._held))

    async def _take(self, response: _Response, sink: Sink) -> None:
        kind = response.chunk_type
        if kind == _Response.NO_SPEAKABLE_TEXT:
            # The piece has nothing to say: answered, quietly.
            self._heard("answer")
            return
        data = response.audio_chunk.data
        frames_before = self._frames
        chunk = self._decode(data) if data else None
        if chunk is not None and len(chunk):
            # Time spent waiting for room (a paused output) is ours, not the server's.
            self._in_sink = True
            self._arm()
            try:
                await sink.audio(chunk)
            finally:
                self._in_sink = False
            self._release_held(sink, frames_before)
        text = response.text_chunk.text
        if text and kind == _Response.TEXT_ONLY and not data:
            # Its audio follows: the text is heard with that, not now.
            self._held.append(_spoken(response))
            self._heard("text ahead")
            return
        self._heard("answer" if data else "other")
        if text:
            sink.spoken(_spoken(response))

    def _release_held(self, sink: Sink, frames_before: int) -> None:
        """Text that came ahead of its audio, placed where that audio starts."""
        at_ms = frames_before * 1000 // self._samplerate
        for spoken in self._held:
            sink.spoken(Spoken(spoken.text, max(spoken.start_ms, at_ms), spoken.words))
        self._held.clear()

    def _decode(self, data: bytes) -> Frames:
        if self._first_audio is None:
            self._first_audio = time.monotonic() - self._started
        chunk = self._decoder.decode(data)
        self._frames += len(chunk)
        return chunk

    async def result(self) -> CallResult:
        if self._decoder.pending:
            _LOGGER.warning("the audio stream ended in the middle of a sample; last byte dropped")
        request_id = metadata_value(await self.rpc.initial_metadata(), "x-request-id")
        return CallResult(self._frames, request_id, self._first_audio)
