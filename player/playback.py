"""The utterance queue and its worker: one synthesis call at a time, in order.

An utterance's audio follows the previous one's in the ring without a gap, so the
worker moves on as soon as a call has delivered its last chunk; a separate tracker
resolves each utterance once the callback has played its last frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import grpc

from player.output import AudioOutput, OutputError
from player.ring import Frames
from player.session import CallResult, Sink, SynthesisError
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


class Playback:
    """Plays queued utterances one at a time through one AudioOutput."""

    def __init__(
        self, output: AudioOutput, synthesis: Synthesis, stall_timeout: float = STALL_TIMEOUT
    ) -> None:
        self.output = output
        self._synthesis = synthesis
        self._stall = stall_timeout
        self._queue: deque[Utterance] = deque()
        self._queued = asyncio.Event()
        self._current: tuple[Utterance, asyncio.Task[None]] | None = None
        # (ring position where it ends, frames, utterance), oldest first.
        self._pending: deque[tuple[int, int, Utterance]] = deque()
        self._pending_added = asyncio.Event()
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

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._work())
            group.create_task(self._track())

    async def stop(self) -> int:
        """Silence at once: cancel the call in progress, drop the queue, fade out."""
        stopped = SynthesisError("stopped", grpc.StatusCode.CANCELLED)
        dropped = [*self._queue, *(u for _, _, u in self._pending)]
        self._queue.clear()
        self._pending.clear()
        if self._current is not None:
            utterance, task = self._current
            dropped.append(utterance)
            task.cancel()
            await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
        for utterance in dropped:
            utterance.close()
            utterance.fail(stopped)
        self.counters.cancelled += len(dropped)
        if not await self.output.flush(FLUSH_TIMEOUT):
            _LOGGER.warning(
                "the audio callback did not confirm the fade-out in time (last call %.3f s ago)",
                time.monotonic() - self.output.last_callback,
            )
        return len(dropped)

    async def cancel(self, utterance: Utterance) -> None:
        """Drop one utterance, queued, being synthesised or playing, fading out if it is
        audible. Audio already queued behind a playing one in the ring goes with it."""
        cancelled = SynthesisError("cancelled", grpc.StatusCode.CANCELLED)
        dropped = [utterance]
        if utterance in self._queue:
            self._queue.remove(utterance)
        elif self._current is not None and self._current[0] is utterance:
            task = self._current[1]
            task.cancel()
            await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
            dropped = [utterance, *(u for _, _, u in self._pending)]
            self._pending.clear()
            await self.output.flush(FLUSH_TIMEOUT)
        elif self._pending and self._pending[0][2] is utterance:
            dropped = [u for _, _, u in self._pending]
            self._pending.clear()
            await self.output.flush(FLUSH_TIMEOUT)
        else:
            # Finished, or its audio already sits behind what is playing: let it be.
            return
        self.counters.cancelled += len(dropped)
        for other in dropped:
            other.fail(cancelled)

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            utterance = self._queue.popleft()
            task = asyncio.create_task(self._play(utterance))
            self._current = (utterance, task)
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
                raise
            finally:
                self._current = None

    async def _play(self, utterance: Utterance) -> None:
        output = self.output

        async def sink(frames: Frames) -> None:
            await output.write(frames, self._stall)

        try:
            await output.prepare()
            output.begin_utterance()
            result = await self._synthesis.synthesize(self._waking(utterance), sink)
        except asyncio.CancelledError:
            output.expecting = False
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
        self._pending.append((end, result.frames, utterance))
        self._pending_added.set()

    async def _waking(self, utterance: Utterance) -> AsyncIterator[Piece]:
        """The utterance's text, waking the output first. A synthesis call asks for its
        first piece only once its options are written, so a stream start (which competes
        for the GIL) never delays the request itself."""
        await self.output.wake()
        async for piece in utterance.pieces():
            yield piece

    async def _track(self) -> None:
        while True:
            while not self._pending:
                self._pending_added.clear()
                await self._pending_added.wait()
            end, frames, utterance = self._pending[0]
            try:
                await self.output.wait_position(end, self._stall)
            except OutputError as err:
                failed = list(self._pending)
                self._pending.clear()
                for _, _, other in failed:
                    self._failed(other, err)
                continue
            # `stop` may have dropped it meanwhile (the flush moves the position on too).
            if self._pending and self._pending[0][2] is utterance:
                self._pending.popleft()
                self.counters.utterances += 1
                utterance.resolve(frames)

    def _failed(self, utterance: Utterance, err: Exception) -> None:
        self.counters.errors += 1
        self.last_error = str(err)
        if isinstance(err, OutputError):
            _LOGGER.warning("%s: %s", utterance.id, err)
        utterance.fail(err)
