"""A scripted SpeechKit v3-compatible server that "speaks" sine tones.

It answers `speechkit.tts.v3.Synthesizer/StreamSynthesis` the way the cloud does (auth,
options checks, audio streamed back in arbitrary chunks while text keeps arriving), but the
audio is a tone whose length follows the text, so tests can compare it byte for byte with
`ToneServer.expected_pcm`. A `ToneScript` chooses latency, pacing, chunk sizes and faults.

Run it stand-alone with `python -m tests.harness.tone_server --listen 127.0.0.1:50051`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from grpc import aio

from player import limits
from player.errors import Rejected
from player.generated.speechkit.tts.v3 import tts_pb2
from player.local.service import (
    Context,
    Credentials,
    bound_address,
    check_options,
    metadata_dict,
    read_stream,
    register,
    send,
    serve_call,
)
from tests.harness.tone_synth import (
    BYTES_PER_SAMPLE,
    Chunker,
    Pacer,
    ToneGenerator,
    byte_offset_ms,
    piece_samples,
)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToneScript:
    """What the server does on each call. Replace `ToneServer.script` to change it; a call
    keeps the script it started with."""

    frequency_hz: float = 440.0
    frequencies: tuple[tuple[str, float], ...] = ()
    """(word, Hz): a piece holding the word is a tone of that pitch (the first that
    matches; others `frequency_hz`), so a recording tells pieces apart."""
    amplitude: float = 0.5
    """Fraction of full scale."""
    ms_per_char: float = 40.0
    """Milliseconds of audio per character of text (spaces count)."""
    first_chunk_delay: float = 0.0
    """Seconds from the first text to the first audio chunk."""
    realtime_factor: float = 0.0
    """Audio seconds produced per wall second; 0 = as fast as possible."""
    jitter: float = 0.0
    """Seconds, uniform +/- on each chunk's send time (seeded RNG)."""
    jitter_seed: int = 0
    """Seed of the jitter RNG (drift draws from it too); call number k uses jitter_seed + k."""
    drift: float = 0.0
    """Seconds: per-chunk step of a random walk of lateness behind the schedule, each step
    uniform +/- drift, reflected at 0 (never early); 0 = off. See `Pacer`."""
    per_piece_delay: bool = False
    """Every piece, not just the first, waits `first_chunk_delay` for its first chunk,
    counted from when the audio before it was due (or its arrival, if later)."""
    piece_pause_s: tuple[float, float] = (0.0, 0.0)
    """Seconds (low, high): every piece after the first waits a uniform draw from this
    range before its first chunk, counted like `per_piece_delay`'s wait; (0, 0) = off."""
    stall_at_s: float | None = None
    """Audio seconds into the call at which the sender pauses `stall_for_s` once, then
    catches up with its schedule; None = off. A pacing pattern, unlike `stall_after_bytes`."""
    stall_for_s: float = 0.3
    """Seconds of the `stall_at_s` pause."""
    hold_until_force: bool = False
    """Speak text only at force_synthesis or the end of the input, as a service does
    that waits for more context; False speaks each piece as it arrives."""
    chunk_bytes: tuple[int, ...] = (4801, 3000, 1)
    """Chunk sizes, cycled; odd sizes split samples on purpose."""
    abort_after_bytes: int | None = None
    """Abort the call once this many audio bytes were sent."""
    abort_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    abort_message: str = "stream aborted by test server"
    never_answer: bool = False
    """Accept the call and read its requests, but send nothing and never end it: a hung
    server (the call ends when the client cancels it or the server stops)."""
    stall_after_bytes: int | None = None
    """Once this many audio bytes were sent, send nothing for `stall_s` seconds (once)."""
    stall_s: float = math.inf
    """How long that stall lasts; inf: the rest never comes and the call never ends."""
    text_only_first: bool = False
    """Send each piece's text in a TEXT_ONLY response (text_chunk and start_ms, no audio)
    ahead of its audio, which then comes in AUDIO_ONLY responses without text, as
    SpeechKit's livetts model does."""
    unspeakable_pieces: frozenset[int] = frozenset()
    """Pieces (0-based, in the order they are spoken; with hold_until_force, what one
    force releases is one piece) answered by one NO_SPEAKABLE_TEXT response, no audio."""
    api_key: str | None = None
    """If set, require `authorization: Api-Key <this>` (scheme case-insensitive)."""
    iam_token: str | None = None
    """If set, `authorization: Bearer <this>` is accepted too."""
    credentials: Credentials | None = None
    """If set, what `authorization` is accepted, instead of `api_key` and `iam_token`:
    say, a `tests.harness.iam_server.BearerCheck` of tokens that expire or are revoked."""
    voices: frozenset[str] = limits.VOICES


def script_pacer(script: ToneScript, rng: random.Random) -> Pacer:
    """The pacing `script` asks for, drawing its delays from `rng`."""
    return Pacer(
        script.first_chunk_delay,
        script.realtime_factor,
        script.jitter,
        rng,
        drift=script.drift,
        per_piece_delay=script.per_piece_delay,
        stall_at_s=script.stall_at_s,
        stall_for_s=script.stall_for_s,
        piece_pause_s=script.piece_pause_s,
    )


@dataclass
class CallRecord:
    """One StreamSynthesis call as the server saw it."""

    metadata: dict[str, str] = field(default_factory=dict)
    options: tts_pb2.SynthesisOptions | None = None
    texts: list[str] = field(default_factory=list)
    forced: int = 0
    """force_synthesis events received."""
    audio: bytearray = field(default_factory=bytearray)
    """Every PCM byte sent, in order."""
    started: float = field(default_factory=time.monotonic)
    first_request_at: float | None = None
    """When the options message was read."""
    chunk_times: list[float] = field(default_factory=list)
    """When each audio chunk was sent."""
    chunk_sizes: list[int] = field(default_factory=list)
    """Bytes in each audio chunk sent, beside `chunk_times`: the cut depends on how the
    text arrived in pieces, so only the server knows it."""
    first_chunk_at: float | None = None
    finished_at: float | None = None
    """When the last chunk was sent (time.monotonic(), like the others)."""
    status: grpc.StatusCode = grpc.StatusCode.OK
    """OK, or the error the call ended with (CANCELLED when the client cancelled)."""
    half_closed: bool = False
    """The request stream ended. grpc ends it on a client cancel too: see `status`."""
    responses: list[tts_pb2.StreamSynthesisResponse] = field(default_factory=list)
    """Every response sent, in order."""
    stalled_at: float | None = None
    """When the script's stall (stall_after_bytes) began."""


class _Call:
    """One StreamSynthesis call: a reader of requests and a writer of paced audio, run
    concurrently so text can keep arriving while earlier audio is paced out."""

    def __init__(
        self, script: ToneScript, record: CallRecord, context: Context, rng: random.Random
    ) -> None:
        self._script = script
        self._record = record
        self._context = context
        self._pieces: asyncio.Queue[tuple[str, float] | None] = asyncio.Queue()
        self._held: list[str] = []  # text waiting for a force (hold_until_force)
        self._chunker = Chunker(script.chunk_bytes)
        self._pacer = script_pacer(script, rng)
        self._rate = 0
        self._tone: ToneGenerator | None = None
        self._produced = 0  # samples of tone taken, over all pitches
        self._spoken = 0  # pieces taken from the queue
        self._stalled = False

    async def run(self, requests: AsyncIterator[tts_pb2.StreamSynthesisRequest]) -> None:
        """Serve the call; raises Rejected with the error it must end with."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(requests))
            tasks.create_task(self._write())

    async def _read(self, requests: AsyncIterator[tts_pb2.StreamSynthesisRequest]) -> None:
        await read_stream(requests, self._start, self._text, self._force)
        self._record.half_closed = True
        self._release()
        self._pieces.put_nowait(None)

    def _text(self, text: str) -> None:
        self._record.texts.append(text)
        self._held.append(text)
        if not self._script.hold_until_force:
            self._release()

    def _force(self) -> None:
        self._record.forced += 1
        self._release()

    def _release(self) -> None:
        if self._held:
            self._pieces.put_nowait(("".join(self._held), time.monotonic()))
            self._held = []

    def _start(self, options: tts_pb2.SynthesisOptions) -> None:
        self._record.first_request_at = time.monotonic()
        self._rate = check_options(options, self._script.voices, allow_wav=False).rate
        self._record.options = options
        self._tone = ToneGenerator(self._script.frequency_hz, self._script.amplitude, self._rate)
        self._tones: dict[float, ToneGenerator] = {self._script.frequency_hz: self._tone}

    async def _write(self) -> None:
        if self._script.never_answer:
            await asyncio.Future()  # until the call is cancelled
        while (piece := await self._pieces.get()) is not None:
            text, arrived_at = piece
            assert self._tone is not None  # the reader queues text only after options
            index, self._spoken = self._spoken, self._spoken + 1
            start_ms = byte_offset_ms(len(self._record.audio), self._rate)
            if index in self._script.unspeakable_pieces:
                kind = tts_pb2.StreamSynthesisResponse.NO_SPEAKABLE_TEXT
                await self._respond(tts_pb2.StreamSynthesisResponse(chunk_type=kind))
                continue
            if self._script.text_only_first:
                ahead = tts_pb2.StreamSynthesisResponse(
                    text_chunk=tts_pb2.TextChunk(text=text),
                    start_ms=start_ms,
                    chunk_type=tts_pb2.StreamSynthesisResponse.TEXT_ONLY,
                )
                await self._respond(ahead)
            self._pacer.piece_arrived(arrived_at, self._produced / self._rate)
            count = piece_samples(len(text), self._script.ms_per_char, self._rate)
            self._produced += count
            tone = self._tone_for(text)
            for i, chunk in enumerate(self._chunker.split(tone.take(count))):
                await self._send_stalling(chunk, text if i == 0 else None)

    def _tone_for(self, text: str) -> ToneGenerator:
        frequency = tone_frequency(self._script, text)
        if frequency not in self._tones:
            self._tones[frequency] = ToneGenerator(frequency, self._script.amplitude, self._rate)
        return self._tones[frequency]

    async def _respond(self, response: tts_pb2.StreamSynthesisResponse) -> None:
        await send(self._context, response)
        self._record.responses.append(response)

    async def _send_stalling(self, chunk: bytes, text: str | None) -> None:
        """`_send`, with the stall the script asks for at the byte it asks for."""
        limit, sent = self._script.stall_after_bytes, len(self._record.audio)
        if limit is None or self._stalled or sent + len(chunk) < limit:
            await self._send(chunk, text)
            return
        cut = limit - sent
        if cut > 0:
            await self._send(chunk[:cut], text)
            chunk, text = chunk[cut:], None
        self._stalled = True
        self._record.stalled_at = time.monotonic()
        if math.isinf(self._script.stall_s):
            await asyncio.Future()  # until the call is cancelled
        await asyncio.sleep(self._script.stall_s)
        if chunk:
            await self._send(chunk, text)

    async def _send(self, chunk: bytes, text: str | None) -> None:
        record, limit = self._record, self._script.abort_after_bytes
        start = len(record.audio)
        if limit is not None:
            if start >= limit:
                raise Rejected(self._script.abort_code, self._script.abort_message)
            chunk = chunk[: limit - start]
        end = start + len(chunk)
        due = self._pacer.due(end / (BYTES_PER_SAMPLE * self._rate))
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        start_ms = byte_offset_ms(start, self._rate)
        response = tts_pb2.StreamSynthesisResponse(
            audio_chunk=tts_pb2.AudioChunk(data=chunk),
            start_ms=start_ms,
            length_ms=byte_offset_ms(end, self._rate) - start_ms,
        )
        if self._script.text_only_first:
            response.chunk_type = tts_pb2.StreamSynthesisResponse.AUDIO_ONLY
        elif text is not None:
            response.text_chunk.text = text
        await self._respond(response)
        record.audio += chunk
        record.finished_at = time.monotonic()
        record.chunk_times.append(record.finished_at)
        record.chunk_sizes.append(len(chunk))
        if record.first_chunk_at is None:
            record.first_chunk_at = record.finished_at
        if limit is not None and end >= limit:
            raise Rejected(self._script.abort_code, self._script.abort_message)


def tone_frequency(script: ToneScript, text: str) -> float:
    """The pitch `script` speaks `text` at."""
    return next(
        (hz for word, hz in script.frequencies if re.search(rf"\b{re.escape(word)}\b", text)),
        script.frequency_hz,
    )


class ToneServer:
    """A grpc.aio server on a local address whose StreamSynthesis speaks sine tones."""

    def __init__(self, script: ToneScript | None = None) -> None:
        self.script = script if script is not None else ToneScript()
        self.next_scripts: list[ToneScript] = []
        """Scripts for the next calls, one each in order; then `script` again."""
        self.calls: list[CallRecord] = []
        self._finished: list[CallRecord] = []
        self._progress = asyncio.Event()
        self._server: aio.Server | None = None
        self.address = ""
        """Where clients dial it, once started."""

    async def start(self, address: str = "127.0.0.1:0") -> str:
        """Listen on `address` (host:port, port 0 picks one, or unix:PATH); return the
        address clients should dial."""
        if self._server is not None:
            raise RuntimeError("ToneServer already started")
        server = aio.server()
        register(server, self._stream_synthesis)
        port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        bound = bound_address(address, port)
        _LOGGER.info("tone server listening on %s", bound)
        self.address = bound
        return bound

    async def stop(self, grace: float = 0.5) -> None:
        """Stop listening; calls still running get `grace` seconds, then are cancelled."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)

    async def __aenter__(self) -> ToneServer:
        """Started on a free local port."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_calls(self, n: int, timeout: float) -> list[CallRecord]:  # noqa: ASYNC109
        """Wait until `n` calls have finished; return the finished ones in start order.
        Raises TimeoutError after `timeout` seconds."""

        async def reached() -> None:
            while len(self._finished) < n:
                await self._progress.wait()

        await asyncio.wait_for(reached(), timeout)
        return [call for call in self.calls if any(call is done for done in self._finished)]

    async def wait_finished(self, call: CallRecord, timeout: float) -> CallRecord:  # noqa: ASYNC109
        """Wait until ``call`` has finished (cancelled included); TimeoutError after
        `timeout` seconds."""

        async def reached() -> None:
            while not any(call is done for done in self._finished):
                await self._progress.wait()

        await asyncio.wait_for(reached(), timeout)
        return call

    async def wait_started(self, n: int, timeout: float) -> list[CallRecord]:  # noqa: ASYNC109
        """Wait until `n` calls have started (a hung one never finishes); return them all.
        Raises TimeoutError after `timeout` seconds."""

        async def reached() -> None:
            while len(self.calls) < n:
                await self._progress.wait()

        await asyncio.wait_for(reached(), timeout)
        return list(self.calls)

    def expected_pcm(self, texts: list[str], rate: int) -> bytes:
        """The audio the current script sends for `texts`, as one LINEAR16 byte string."""
        script, tones = self.script, dict[float, ToneGenerator]()
        audio = bytearray()
        for text in texts:
            hz = tone_frequency(script, text)
            tone = tones.setdefault(hz, ToneGenerator(hz, script.amplitude, rate))
            audio += tone.take(piece_samples(len(text), script.ms_per_char, rate))
        return bytes(audio)

    async def _stream_synthesis(
        self,
        requests: AsyncIterator[tts_pb2.StreamSynthesisRequest],
        context: Context,
    ) -> None:
        script = self.next_scripts.pop(0) if self.next_scripts else self.script
        record = CallRecord(metadata=metadata_dict(context))
        rng = random.Random(script.jitter_seed + len(self.calls))
        self.calls.append(record)
        self._progressed()
        credentials = script.credentials or Credentials(script.api_key, script.iam_token)

        def ended(code: grpc.StatusCode) -> None:
            record.status = code

        try:
            await serve_call(
                context,
                credentials,
                record.metadata,
                lambda: _Call(script, record, context, rng).run(requests),
                ended,
            )
        except asyncio.CancelledError:
            record.status = grpc.StatusCode.CANCELLED
            raise
        finally:
            _LOGGER.debug(
                "call finished: %s, %d texts, %d bytes",
                record.status.name, len(record.texts), len(record.audio),
            )  # fmt: skip
            self._finished.append(record)
            self._progressed()

    def _progressed(self) -> None:
        """A call started or finished: wake the waiters, who check what they wait for."""
        self._progress.set()
        self._progress = asyncio.Event()


async def _serve(script: ToneScript, listen: str) -> None:
    server = ToneServer(script)
    await server.start(listen)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        _LOGGER.info("stopping after %d calls", len(server.calls))
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run a tone server until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.tone_server",
        description="A SpeechKit v3-compatible StreamSynthesis server that speaks sine tones.",
    )
    parser.add_argument("--listen", default="127.0.0.1:50051", help="host:port or unix:PATH")
    parser.add_argument("--api-key", help="require 'authorization: Api-Key KEY'")
    parser.add_argument("--iam-token", help="also accept 'authorization: Bearer TOKEN'")
    parser.add_argument("--realtime", type=float, default=0.0, help="audio s per wall s; 0=max")
    parser.add_argument("--first-chunk-delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="seconds, +/- per chunk")
    parser.add_argument("--drift", type=float, default=0.0, help="seconds, random-walk step")
    parser.add_argument(
        "--per-piece-delay", action="store_true", help="first-chunk delay for every piece"
    )
    parser.add_argument("--stall-at", type=float, help="audio seconds at which to pause once")
    parser.add_argument("--stall-for", type=float, default=0.3, help="seconds of that pause")
    parser.add_argument("--frequency", type=float, default=440.0, help="Hz")
    parser.add_argument("--ms-per-char", type=float, default=40.0, help="ms of audio per char")
    parser.add_argument("--log-level", default="INFO", help="DEBUG logs every call")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    script = ToneScript(
        frequency_hz=args.frequency,
        ms_per_char=args.ms_per_char,
        first_chunk_delay=args.first_chunk_delay,
        realtime_factor=args.realtime,
        jitter=args.jitter,
        drift=args.drift,
        per_piece_delay=args.per_piece_delay,
        stall_at_s=args.stall_at,
        stall_for_s=args.stall_for,
        api_key=args.api_key,
        iam_token=args.iam_token,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(script, args.listen))


if __name__ == "__main__":
    main()
