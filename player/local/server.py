"""A SpeechKit v3-compatible server backed by Piper: `speechkit-player serve-local`.

It answers `StreamSynthesis` like the cloud (options first, text buffered and spoken
sentence by sentence as it arrives, `force_synthesis` and half-close flush) and
`UtteranceSynthesis`, so the daemon's one client code path serves both. Synthesis runs
on worker threads: one slow sentence does not hold up other calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from grpc import aio

from player import limits
from player.config import LocalSettings
from player.generated.speechkit.tts.v3 import tts_pb2
from player.local.engine import PiperEngine
from player.local.service import (
    Context,
    Credentials,
    OutputFormat,
    bound_address,
    check_options,
    check_voice_options,
    invalid,
    metadata_dict,
    output_format,
    read_stream,
    register,
    send,
    serve_call,
)
from player.local.voicing import Voicing
from player.speech.sentences import SentenceSplitter

_LOGGER = logging.getLogger(__name__)


class LocalServer:
    """A grpc.aio server whose Synthesizer service speaks with Piper."""

    def __init__(
        self, engine: PiperEngine, workers: int = 2, credentials: Credentials | None = None
    ) -> None:
        self._engine = engine
        self.voices = limits.VOICES | engine.voice_names
        """Voice names a call may ask for."""
        self._credentials = credentials or Credentials()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="piper")
        self._server: aio.Server | None = None
        self.address = ""
        """Where clients dial it, once started."""

    @property
    def voice_name(self) -> str:
        """The default voice's model name."""
        return self._engine.default.name

    async def start(self, address: str) -> str:
        """Listen on `address` ("host:port", port 0 picks one, or "unix:PATH"); return
        the address clients should dial."""
        server = aio.server()
        register(server, self._stream_synthesis, self._utterance_synthesis)
        port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        self.address = bound_address(address, port)
        return self.address

    async def stop(self, grace: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def voicing(
        self,
        voice: str,
        output: OutputFormat,
        speed: float,
        volume: float,
        loudness: tts_pb2.LoudnessNormalizationType.ValueType,
    ) -> Voicing:
        return Voicing(
            self._engine,
            self._engine.voice(voice),
            output,
            self._executor,
            speed=speed,
            volume=volume,
            loudness=loudness,
        )

    async def _stream_synthesis(
        self, requests: AsyncIterator[tts_pb2.StreamSynthesisRequest], context: Context
    ) -> None:
        call = _StreamCall(self, context)
        await serve_call(
            context, self._credentials, metadata_dict(context), lambda: call.run(requests)
        )

    async def _utterance_synthesis(
        self, request: tts_pb2.UtteranceSynthesisRequest, context: Context
    ) -> None:
        async def body() -> None:
            hints: dict[str, object] = {}
            for hint in request.hints:
                kind = hint.WhichOneof("Hint")
                if kind is not None:
                    hints[kind] = getattr(hint, kind)
            voice, speed = str(hints.get("voice", "")), float(str(hints.get("speed", 0.0)))
            volume = float(str(hints.get("volume", 0.0)))
            pitch = float(str(hints.get("pitch_shift", 0.0)))
            loudness = request.loudness_normalization_type
            check_voice_options(voice, speed, volume, pitch, loudness, self.voices)
            if not request.text.strip():
                raise invalid("text is empty")
            if len(request.text) > limits.TEXT_PER_CALL:
                raise invalid(f"text exceeds {limits.TEXT_PER_CALL} characters")
            spec = request.output_audio_spec if request.HasField("output_audio_spec") else None
            output = output_format(spec, allow_wav=True)
            voicing = self.voicing(voice, output, speed, volume, loudness)
            splitter = SentenceSplitter()
            sentences = splitter.feed(request.text + " ")
            rest = splitter.flush()
            sentences += [rest] if rest else []
            for i, sentence in enumerate(sentences):
                pcm = await voicing.speak(sentence, last=i == len(sentences) - 1)
                reply = tts_pb2.UtteranceSynthesisResponse
                for response in voicing.responses(pcm, sentence, reply):
                    await send(context, response)

        await serve_call(context, self._credentials, metadata_dict(context), body)


class _StreamCall:
    """One StreamSynthesis call: a reader that cuts text into sentences and a writer that
    speaks them in order, so text keeps arriving while earlier sentences are synthesised."""

    def __init__(self, server: LocalServer, context: Context) -> None:
        self._server = server
        self._context = context
        self._splitter = SentenceSplitter()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._voicing: Voicing | None = None
        self._started = time.monotonic()

    async def run(self, requests: AsyncIterator[tts_pb2.StreamSynthesisRequest]) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(requests))
            tasks.create_task(self._write())

    async def _read(self, requests: AsyncIterator[tts_pb2.StreamSynthesisRequest]) -> None:
        try:
            await read_stream(requests, self._start, self._text, self._flush)
            self._flush()
        finally:
            # The writer must end even when the reader fails, or the TaskGroup would wait
            # on it; a Rejected from here still decides the call's status.
            self._sentences.put_nowait(None)

    def _start(self, options: tts_pb2.SynthesisOptions) -> None:
        output = check_options(options, self._server.voices, allow_wav=True)
        self._voicing = self._server.voicing(
            options.voice,
            output,
            options.speed,
            options.volume,
            options.loudness_normalization_type,
        )

    def _text(self, text: str) -> None:
        for sentence in self._splitter.feed(text):
            self._sentences.put_nowait(sentence)

    def _flush(self) -> None:
        rest = self._splitter.flush()
        if rest:
            self._sentences.put_nowait(rest)

    async def _write(self) -> None:
        first = True
        while (sentence := await self._sentences.get()) is not None:
            assert self._voicing is not None  # sentences are queued only after options
            pcm = await self._voicing.speak(sentence, last=self._sentences.empty())
            kind = tts_pb2.StreamSynthesisResponse
            for response in self._voicing.responses(pcm, sentence, kind):
                await send(self._context, response)
                if first:
                    first = False
                    _LOGGER.debug(
                        "first audio after %.0f ms", (time.monotonic() - self._started) * 1000
                    )


def build_server(settings: LocalSettings) -> LocalServer:
    """Load the voices (seconds, the first time) and return a server ready to start."""
    return LocalServer(PiperEngine(settings), settings.workers)


async def serve(settings: LocalSettings, listen: str, exit_with_stdin: bool = False) -> None:
    """Run until SIGTERM/SIGINT (or, with `exit_with_stdin`, until standard input closes:
    a parent that dies without stopping us closes it). Raises LocalEngineError."""
    loop = asyncio.get_running_loop()
    server = await loop.run_in_executor(None, build_server, settings)
    address = await server.start(listen)
    _LOGGER.info(
        "serving SpeechKit v3 synthesis on %s with Piper voice %s",
        address, server.voice_name,
    )  # fmt: skip
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    if exit_with_stdin:
        _watch_stdin(loop, stopping)
    try:
        await stopping.wait()
    finally:
        _LOGGER.info("local synthesizer stopping")
        await server.stop()


def _watch_stdin(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
    def wait_for_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(sys.stdin.fileno(), 4096):
                pass
        loop.call_soon_threadsafe(stopping.set)

    threading.Thread(target=wait_for_eof, name="parent-watch", daemon=True).start()
