"""A `Synthesis` that keeps the audio of each utterance it speaks whole, and plays a text
it kept from disk (`recall`) with no call at all.

Only audio that is all of the text sent is kept: a call that failed, was cancelled, or
took back less than it asked to (a resumed sentence whose start had been heard) is not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from player.audio.ring import Frames
from player.cache.entry import Entry, to_pcm
from player.cache.key import SoundKey, normal_text
from player.cache.store import PhraseStore
from player.config import VoiceSettings
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, Synthesis, VoiceChoice

_LOGGER = logging.getLogger(__name__)

FIRST_CHUNK_MS = 20
"""The first audio of a cached phrase goes to the ring in a short chunk, so the output
may start at once; the rest in CHUNK_MS pieces."""
CHUNK_MS = 100


@dataclass(frozen=True)
class Engines:
    """Who speaks (see `SoundKey.engine`)."""

    primary: str
    """The configured endpoint, or the local voice's model when that is all there is."""
    local: str | None = None
    """The local voice's model, when it stands in for an unreachable endpoint."""


@dataclass(frozen=True)
class _Voicing:
    """What a call's audio is kept under, fixed when the call starts."""

    voice: VoiceSettings
    engines: Engines

    def engine_of(self, result: CallResult) -> str:
        if result.fallback and self.engines.local is not None:
            return self.engines.local
        return self.engines.primary

    def chosen(self, choice: VoiceChoice | None) -> VoiceSettings:
        """The voice an utterance with ``choice`` speaks with."""
        return self.voice if choice is None else choice.applied(self.voice)


class Caching:
    def __init__(
        self,
        inner: Synthesis,
        store: PhraseStore,
        voice: VoiceSettings,
        engines: Engines,
        samplerate: int,
    ) -> None:
        self._inner = inner
        self.store = store
        self._voicing = _Voicing(voice, engines)
        self._samplerate = samplerate
        self._saving: set[asyncio.Task[bool]] = set()

    def configure(self, voice: VoiceSettings, engines: Engines) -> None:
        """For calls from now on (a config reload). A call already under way is not
        kept: the voice may have changed in the middle of it."""
        self._voicing = _Voicing(voice, engines)

    @property
    def samplerate(self) -> int:
        return self._samplerate

    def engine_of(self, result: CallResult) -> str:
        """Who spoke a call's audio."""
        return self._voicing.engine_of(result)

    def find(self, text: str, choice: VoiceChoice | None = None) -> tuple[str, int] | None:
        """(engine, duration in ms) of what is kept for the text, in the voice (as
        ``choice`` changes it) and by the engine configured, marked as just played; None
        if nothing is."""
        key = self.key(text, choice=choice)
        duration = self.store.touch(key.digest())
        return (key.engine, duration) if duration is not None else None

    def key(
        self, text: str, engine: str | None = None, choice: VoiceChoice | None = None
    ) -> SoundKey:
        voicing = self._voicing
        engine = engine or voicing.engines.primary
        return SoundKey(normal_text(text), engine, voicing.chosen(choice), self._samplerate)

    async def recall(
        self,
        text: str,
        sink: Sink,
        found: Callable[[], None] = lambda: None,
        choice: VoiceChoice | None = None,
    ) -> CallResult | None:
        started = time.monotonic()
        key = self.key(text, choice=choice)
        entry = await asyncio.to_thread(self.store.load, key.digest())
        if entry is None or entry.samplerate != self._samplerate:
            return None
        found()
        delay = await play(entry, sink, started)
        return CallResult(entry.frames, "", delay, cached=True)

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        call = await self._run(pieces, sink, choice)
        if call.whole and call.voicing is self._voicing:
            self._keep(call)
        return call.result

    async def record(self, pieces: AsyncIterator[Piece]) -> tuple[CallResult, bool]:
        """Synthesises without playing, and keeps it: the result, and whether it was
        kept (`cache warm`). What the local voice spoke in the endpoint's place is not
        kept: a `say` would not look for it."""
        call = await self._run(pieces, None, None)
        if not call.whole or call.result.fallback or call.voicing is not self._voicing:
            return call.result, False
        return call.result, await self._keep(call)

    async def _run(
        self, pieces: AsyncIterator[Piece], sink: Sink | None, choice: VoiceChoice | None
    ) -> _Call:
        voicing = self._voicing
        tap = _Tap(pieces)
        recording = _Recording(sink, self._samplerate)
        result = await self._inner.synthesize(tap.pieces(), recording, choice)
        text = normal_text("".join(tap.texts))
        return _Call(voicing, voicing.chosen(choice), text, result, recording, tap.exhausted)

    def _keep(self, call: _Call) -> asyncio.Task[bool]:
        voicing, recording = call.voicing, call.recording
        engine = voicing.engine_of(call.result)
        key = SoundKey(call.text, engine, call.voice, self._samplerate)
        entry = Entry(
            key.text,
            engine,
            call.voice.voice,
            self._samplerate,
            to_pcm(recording.frames()),
            tuple(recording.marks),
        )
        # Off the worker: the next utterance's call need not wait for the disk.
        task = asyncio.create_task(asyncio.to_thread(self.store.save, key.digest(), entry))
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)
        task.add_done_callback(_saved)
        return task

    async def aclose(self) -> None:
        """Waits for entries still being written."""
        if self._saving:
            await asyncio.wait(self._saving)


def _saved(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        # The store reports what it expects itself; anything else is a bug, not a reason
        # to stop speaking.
        _LOGGER.error("keeping a phrase failed: %r", error)


async def play(entry: Entry, sink: Sink, started: float) -> float:
    """Passes the entry's audio, and its text marks after the audio they mark, to
    ``sink``; returns the seconds from ``started`` to the first audio."""
    frames = entry.float_frames()
    rate = entry.samplerate
    marks = sorted(entry.spoken, key=lambda s: s.start_ms)
    step, at, first = rate * FIRST_CHUNK_MS // 1000, 0, None
    while at < len(frames):
        await sink.audio(frames[at : at + step])
        if first is None:
            first = time.monotonic() - started
        at += step
        step = rate * CHUNK_MS // 1000
        passed_ms = at * 1000 // rate
        while marks and marks[0].start_ms < passed_ms:
            sink.spoken(marks.pop(0))
    for mark in marks:
        sink.spoken(mark)
    return first if first is not None else time.monotonic() - started


@dataclass(frozen=True)
class _Call:
    """One call through the cache: what it was kept under when it started, the text it
    sent, and what came back."""

    voicing: _Voicing
    voice: VoiceSettings
    """The voice it spoke with: the configured one as the utterance's choice changed it."""
    text: str
    result: CallResult
    recording: _Recording
    exhausted: bool
    """The pieces ran out: the call sent all of the text."""

    @property
    def whole(self) -> bool:
        """Its audio, as recorded, is all of its text's and nothing else."""
        recording = self.recording
        return (
            self.exhausted
            and recording.whole
            and bool(self.text)
            and bool(recording.count)
            and self.result.frames == recording.count
        )


class _Tap:
    """The pieces passed on, their text noted, and whether they ran out."""

    def __init__(self, pieces: AsyncIterator[Piece]) -> None:
        self._pieces = pieces
        self.texts: list[str] = []
        self.exhausted = False

    async def pieces(self) -> AsyncIterator[Piece]:
        async for piece in self._pieces:
            if isinstance(piece, str):
                self.texts.append(piece)
            yield piece
        self.exhausted = True


class _Recording:
    """Passes a call's output on (if there is a sink), keeping a copy."""

    def __init__(self, sink: Sink | None, samplerate: int) -> None:
        self._sink = sink
        self._samplerate = samplerate
        self._chunks: list[Frames] = []
        self.count = 0
        self.marks: list[Spoken] = []
        self.whole = True
        """False once the audio kept is no longer all of the text's, once."""

    async def audio(self, frames: Frames) -> None:
        if self._sink is not None:
            await self._sink.audio(frames)
        self._chunks.append(frames.copy())
        self.count += len(frames)

    def spoken(self, spoken: Spoken) -> None:
        if self._sink is not None:
            self._sink.spoken(spoken)
        self.marks.append(spoken)

    async def withdraw(self, frames: int) -> int:
        asked = min(frames, self.count)
        taken = await self._sink.withdraw(frames) if self._sink is not None else asked
        if taken < asked:
            # What had been heard stays, and the next call speaks it again.
            self.whole = False
        self._drop_last(min(taken, self.count))
        return taken

    def frames(self) -> Frames:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def _drop_last(self, frames: int) -> None:
        if frames <= 0:
            return
        kept = self.frames()[: self.count - frames]
        self._chunks, self.count = [kept], len(kept)
        # Marks inside the audio taken back go with it.
        end_ms = self.count * 1000 // self._samplerate
        self.marks = [s for s in self.marks if s.start_ms < end_ms]
