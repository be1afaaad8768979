"""The utterance queue and its worker: one synthesis call at a time, in order.

An utterance's audio follows the previous one's in the ring without a gap, so the
worker moves on as soon as a call has delivered its last chunk. A separate tracker
follows the callback's read position through marks left in the ring (an utterance's
first frame, the text each stretch of audio speaks, its last frame) and publishes each
as an event when the callback gets there: that is when it is heard.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import grpc

from player.devices import OutputError
from player.events import Event, EventBus
from player.output import AudioOutput
from player.ring import Frames
from player.session import CallResult, Sink, Spoken, SynthesisError
from player.text import Piece
from player.utterance import Utterance

_LOGGER = logging.getLogger(__name__)

# How long the device may take no audio at all before we call it gone.
STALL_TIMEOUT = 2.0
# Bound on how long `stop` waits for the callback to confirm the fade.
FLUSH_TIMEOUT = 0.5


class Synthesis(Protocol):
    async def synthesize(self, pieces: AsyncIterator[Piece], sink: Sink) -> CallResult: ...


@dataclass
class Counters:
    utterances: int = 0
    """Utterances played to the end."""
    errors: int = 0
    """Utterances that failed."""
    cancelled: int = 0
    """Utterances dropped by `stop`."""
    fallbacks: int = 0
    """Utterances the local synthesizer spoke because the endpoint was unreachable."""


@dataclass
class _Track:
    """Where one utterance's audio sits in the ring, and what it says where."""

    utterance: Utterance
    start: int | None = None
    """Ring position of its first frame, once written."""
    written: int = 0
    """Frames written so far."""
    spoken: list[tuple[int, str]] = field(default_factory=list)
    """(ring position, text) of each text chunk, in order."""


@dataclass(order=True)
class _Mark:
    position: int
    """Fires once the callback has read up to here."""
    seq: int
    kind: Literal["started", "text", "finished"] = field(compare=False)
    track: _Track = field(compare=False)
    spoken: Spoken | None = field(default=None, compare=False)


class Playback:
    """Plays queued utterances one at a time through one AudioOutput."""

    def __init__(
        self,
        output: AudioOutput,
        synthesis: Synthesis,
        events: EventBus | None = None,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.output = output
        self.events = events or EventBus()
        self._synthesis = synthesis
        self._stall = stall_timeout
        self._queue: deque[Utterance] = deque()
        self._queued = asyncio.Event()
        self._current: tuple[_Track, asyncio.Task[None]] | None = None
        self._pending: list[_Track] = []
        """Fully written, not yet played to the end; oldest first."""
        self._marks: list[_Mark] = []  # a heap
        self._marks_added = asyncio.Event()
        self._seq = itertools.count()
        self.counters = Counters()
        self.last_error = ""

    @property
    def queue_length(self) -> int:
        """Utterances waiting to start synthesis."""
        return len(self._queue)

    @property
    def playing(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def busy(self) -> bool:
        """Playing, or about to."""
        return self.playing or bool(self._queue)

    def submit(self, utterance: Utterance) -> None:
        self._queue.append(utterance)
        self._queued.set()
        self.events.publish(Event("queued", utterance.id))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._work())
            group.create_task(self._track())

    async def stop(self) -> int:
        """Silence at once: cancel the call in progress, drop the queue, fade out."""
        queued = list(self._queue)
        self._queue.clear()
        tracks = await self._drop_ring()
        self._cancelled(queued, tracks, "stopped")
        return len(queued) + len(tracks)

    async def cancel(self, utterance: Utterance) -> None:
        """Drop one utterance, queued, being synthesised or playing, fading out if it is
        audible. Audio already queued behind a playing one in the ring goes with it."""
        if utterance in self._queue:
            self._queue.remove(utterance)
            self._cancelled([utterance], [], "cancelled")
            return
        playing = self._pending[0] if self._pending else self._current and self._current[0]
        current = self._current is not None and self._current[0].utterance is utterance
        if not current and not (playing and playing.utterance is utterance):
            # Finished, or its audio already sits behind what is playing: let it be.
            return
        self._cancelled([], await self._drop_ring(), "cancelled")

    async def _drop_ring(self) -> list[_Track]:
        """End the call in progress and fade out the ring; the tracks that had audio in it
        (or were being synthesised), with what of each was played."""
        tracks = list(self._pending)
        self._pending.clear()
        if self._current is not None:
            track, task = self._current
            tracks.append(track)
            task.cancel()
            await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
        self._marks.clear()
        if not await self.output.flush(FLUSH_TIMEOUT):
            _LOGGER.warning(
                "the audio callback did not confirm the fade-out in time (last call %.3f s ago)",
                time.monotonic() - self.output.last_callback,
            )
        return tracks

    def _cancelled(self, queued: list[Utterance], tracks: list[_Track], why: str) -> None:
        error = SynthesisError(why, grpc.StatusCode.CANCELLED)
        rate, heard_to = self.output.device.samplerate, self.output.flushed_at
        for utterance in queued:
            utterance.close()
            utterance.fail(error)
            self.events.publish(Event("cancelled", utterance.id, played_ms=0, text=""))
        for track in tracks:
            played, text = 0, ""
            if track.start is not None:
                played = min(max(heard_to - track.start, 0), track.written)
                text = "".join(t for position, t in track.spoken if position < heard_to)
            track.utterance.close()
            track.utterance.fail(error)
            self.events.publish(
                Event(
                    "cancelled",
                    track.utterance.id,
                    played_ms=played * 1000 // rate,
                    text=text.strip(),
                )
            )
        self.counters.cancelled += len(queued) + len(tracks)

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            track = _Track(self._queue.popleft())
            task = asyncio.create_task(self._play(track))
            self._current = (track, task)
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
                raise
            finally:
                self._current = None

    async def _play(self, track: _Track) -> None:
        output, utterance = self.output, track.utterance
        try:
            await output.prepare()
            output.begin_utterance()
            result = await self._synthesis.synthesize(
                self._waking(utterance), _RingSink(self, track)
            )
        except asyncio.CancelledError:
            output.drain.expecting = False
            raise
        except Exception as err:
            if not isinstance(err, SynthesisError | OutputError):
                # A bug must not leave a caller waiting for an utterance that never ends.
                _LOGGER.exception("%s: unexpected error", utterance.id)
                err = SynthesisError(f"internal error: {err}")
            output.end_utterance()
            utterance.close()
            self._failed(utterance, err)
            return
        end = output.end_utterance()
        if result.fallback:
            self.counters.fallbacks += 1
        if result.first_audio_delay is not None:
            _LOGGER.info(
                "%s: %d chars, %.2f s of audio, first audio after %.0f ms%s",
                utterance.id,
                utterance.chars,
                result.frames / output.device.samplerate,
                result.first_audio_delay * 1000,
                " (local fallback)" if result.fallback else "",
            )
        self._pending.append(track)
        self._mark(end, "finished", track)

    def _mark(
        self,
        position: int,
        kind: Literal["started", "text", "finished"],
        track: _Track,
        spoken: Spoken | None = None,
    ) -> None:
        heapq.heappush(self._marks, _Mark(position, next(self._seq), kind, track, spoken))
        self._marks_added.set()

    async def _waking(self, utterance: Utterance) -> AsyncIterator[Piece]:
        """The utterance's text, waking the output first. A synthesis call asks for its
        first piece only once its options are written, so a stream start (which competes
        for the GIL) never delays the request itself."""
        await self.output.wake()
        async for piece in utterance.pieces():
            yield piece

    async def _track(self) -> None:
        while True:
            while not self._marks:
                self._marks_added.clear()
                await self._marks_added.wait()
            # Marks are only ever left where audio has already been written, so waiting
            # for the callback to get there cannot mistake a slow server for a dead device.
            try:
                await self.output.wait_position(self._marks[0].position, self._stall)
            except OutputError as err:
                # The utterance being synthesised fails by itself, when its own last mark
                # cannot be reached either.
                failed = list(self._pending)
                self._marks.clear()
                self._pending.clear()
                for track in failed:
                    self._failed(track.utterance, err)
                continue
            read = self.output.ring.read_pos
            # `stop` may have cleared the marks meanwhile (the flush moves the position on).
            while self._marks and self._marks[0].position <= read:
                self._fire(heapq.heappop(self._marks))

    def _fire(self, mark: _Mark) -> None:
        track, rate = mark.track, self.output.device.samplerate
        utterance = track.utterance
        if mark.kind == "started":
            delay = int((time.monotonic() - utterance.created) * 1000)
            self.events.publish(Event("started", utterance.id, first_audio_ms=delay))
        elif mark.kind == "text":
            assert mark.spoken is not None
            self.events.publish(
                Event(
                    "text",
                    utterance.id,
                    text=mark.spoken.text.strip(),
                    start_ms=mark.spoken.start_ms,
                    word_timings=mark.spoken.words,
                )
            )
        else:
            if self._pending and self._pending[0] is track:
                self._pending.pop(0)
            self.counters.utterances += 1
            utterance.resolve(track.written)
            played_ms = track.written * 1000 // rate
            self.events.publish(Event("finished", utterance.id, played_ms=played_ms))

    def _failed(self, utterance: Utterance, err: Exception) -> None:
        self.counters.errors += 1
        self.last_error = str(err)
        if isinstance(err, OutputError):
            _LOGGER.warning("%s: %s", utterance.id, err)
        utterance.fail(err)
        self.events.publish(Event("error", utterance.id, error=str(err)))


class _RingSink:
    """A call's output for one utterance: audio into the ring, and marks beside it."""

    def __init__(self, playback: Playback, track: _Track) -> None:
        self._playback = playback
        self._track = track

    async def audio(self, frames: Frames) -> None:
        output, track = self._playback.output, self._track
        if track.start is None:
            track.start = output.ring.write_pos
            self._playback._mark(track.start + 1, "started", track)
        await output.write(frames, self._playback._stall)
        track.written += len(frames)

    def spoken(self, spoken: Spoken) -> None:
        track, ring = self._track, self._playback.output.ring
        if track.start is None:
            return  # text without audio: nothing to hear it by
        offset = spoken.start_ms * self._playback.output.device.samplerate // 1000
        position = min(track.start + offset, ring.write_pos - 1)
        track.spoken.append((position, spoken.text))
        self._playback._mark(position + 1, "text", track, spoken)
