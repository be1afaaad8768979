"""The utterance queue and its worker: one synthesis call at a time, in priority order.

An utterance's audio follows the previous one's in the ring without a gap, so the
worker moves on as soon as a call has delivered its last chunk. What a new utterance
does to those already queued or in the ring follows its priority (`player.speech.priority`):
the ones it pushes aside are cut out of the ring (faded if they are playing) and
dropped, or spoken again later. What is heard when is followed by `player.speech.heard`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Literal

import grpc

from player.audio.output import AudioOutput
from player.audio.ring import Frames
from player.errors import OutputError, SynthesisError
from player.speech.events import Event, EventBus
from player.speech.heard import Counters, Heard, Track
from player.speech.priority import Fate, Priority, fate
from player.speech.schedule import Schedule
from player.speech.utterance import Utterance
from player.synthesis.interface import CallResult, Piece, Recall, Spoken, Synthesis

_LOGGER = logging.getLogger(__name__)

# How long the device may take no audio at all before we call it gone.
STALL_TIMEOUT = 2.0
# Bound on how long `stop` waits for the callback to confirm the fade.
FLUSH_TIMEOUT = 0.5


class Playback:
    """Plays queued utterances one at a time through one AudioOutput."""

    def __init__(
        self,
        output: AudioOutput,
        synthesis: Synthesis,
        events: EventBus | None = None,
        stall_timeout: float = STALL_TIMEOUT,
        chimes: Mapping[str, Frames] | None = None,
        recall: Recall | None = None,
    ) -> None:
        self.output = output
        self.events = events or EventBus()
        self._synthesis = synthesis
        self._recall = recall
        self._stall = stall_timeout
        # By priority name: Priority is a StrEnum, so its members look them up directly.
        self._chimes = dict(chimes or {})
        self._schedule = Schedule()
        self._queued = asyncio.Event()
        self._current: tuple[Track, asyncio.Task[None]] | None = None
        self.heard = Heard(output, self.events, stall_timeout)
        # Interruptions wait for the callback's fade; one at a time, in order.
        self._cutting = asyncio.Lock()
        self._interruptions: set[asyncio.Task[None]] = set()

    def set_chimes(self, chimes: Mapping[str, Frames]) -> None:
        """Chimes for utterances that start from now on (a config reload)."""
        self._chimes = dict(chimes)

    @property
    def counters(self) -> Counters:
        return self.heard.counters

    @property
    def last_error(self) -> str:
        return self.heard.last_error

    @property
    def queue_length(self) -> int:
        """Utterances waiting to start synthesis."""
        return len(self._schedule)

    @property
    def playing(self) -> bool:
        return self._current is not None or bool(self.heard.pending)

    @property
    def current(self) -> Utterance | None:
        """The utterance whose audio plays now (or is on its way), if any."""
        tracks = self._in_ring()
        return tracks[0].utterance if tracks else None

    @property
    def current_id(self) -> str | None:
        current = self.current
        return current.id if current is not None else None

    @property
    def busy(self) -> bool:
        """Playing, or about to."""
        return self.playing or bool(self._schedule) or self._schedule.held is not None

    def _in_ring(self) -> list[Track]:
        """Tracks with audio in the ring (or on the way), in ring order."""
        current = [self._current[0]] if self._current else []
        return [*self.heard.pending, *current]

    def find(self, utterance_id: str) -> Utterance | None:
        """A queued or playing utterance."""
        candidates = [*self._schedule, self._schedule.held, *(t.utterance for t in self._in_ring())]
        return next((u for u in candidates if u is not None and u.id == utterance_id), None)

    def submit(self, utterance: Utterance) -> None:
        origin = utterance.origin
        self.heard.counters.requests[origin.front] += 1
        self.events.publish(
            Event("queued", utterance.id, origin=origin.front, client=origin.client or None)
        )
        priority = utterance.priority
        if priority in (Priority.NOTIFICATION, Priority.PROGRESS) and self.busy:
            if priority is Priority.NOTIFICATION:
                self._dismiss(utterance, "dropped: something else is playing or queued")
            elif (older := self._schedule.hold(utterance)) is not None:
                self._dismiss(older, f"superseded by the newer progress {utterance.id}")
            return
        why = f"interrupted by {utterance.id} ({priority})"
        for waiting in self._schedule:
            verdict = fate(waiting.priority, priority)
            if verdict is Fate.DROP or (
                verdict is Fate.POSTPONE and waiting.priority is Priority.PROGRESS
            ):
                self._schedule.remove(waiting)
                self._postpone_or_drop(waiting, verdict, why)
        self._schedule.add(utterance)
        self._queued.set()
        victims: list[tuple[Track, Fate]] = [
            (track, verdict)
            for track in self._in_ring()
            if (verdict := fate(track.utterance.priority, priority)) is not Fate.KEEP
        ]
        if victims:
            self._interrupt_soon(victims, why)

    async def stop(self) -> int:
        """Silence at once: cancel the call in progress, drop the queue, fade out."""
        self.output.resume()
        queued = self._schedule.clear()
        for utterance in queued:
            self._dismiss(utterance, "stopped")
        tracks = self._in_ring()
        await self._interrupt([(track, Fate.DROP) for track in tracks], "stopped")
        return len(queued) + len(tracks)

    async def cancel(self, utterance: Utterance, why: str = "cancelled") -> bool:
        """Drop one utterance, queued, being synthesised or playing (fading out if it is
        heard). False if it was no longer there."""
        if self._schedule.remove(utterance):
            self._dismiss(utterance, why)
            return True
        tracks = [track for track in self._in_ring() if track.utterance is utterance]
        if not tracks:
            return False
        await self._interrupt([(tracks[0], Fate.DROP)], why)
        return True

    def pause(self) -> None:
        self.output.pause()

    def resume(self) -> None:
        self.output.resume()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._work())
            group.create_task(self.heard.run())

    # -- interrupting --------------------------------------------------------------

    def _interrupt_soon(self, victims: list[tuple[Track, Fate]], why: str) -> None:
        task = asyncio.create_task(self._interrupt(victims, why))
        self._interruptions.add(task)
        task.add_done_callback(self._interruptions.discard)

    async def _interrupt(self, victims: list[tuple[Track, Fate]], why: str) -> None:
        """End the victims' calls and cut their audio out of the ring, then drop them or
        queue them again."""
        async with self._cutting:
            victims = [(t, f) for t, f in victims if t in self._in_ring()]
            if self._current is not None and any(t is self._current[0] for t, _ in victims):
                task = self._current[1]
                task.cancel()
                await asyncio.wait([task], timeout=FLUSH_TIMEOUT)
            heard_to: dict[int, int] = {}
            for track, _ in victims:
                self.heard.forget(track)
                if track.start is None:
                    continue
                end = track.end
                playing = track.start <= self.output.ring.read_pos
                if not await self.output.cut(None if playing else track.start, end, FLUSH_TIMEOUT):
                    _LOGGER.warning(
                        "the audio callback did not confirm the fade-out in time "
                        "(last call %.3f s ago)",
                        time.monotonic() - self.output.stream.last_callback,
                    )
                heard_to[id(track)] = self.output.flushed_at if playing else track.start
            resumed: list[Utterance] = []
            for track, verdict in victims:
                to = heard_to.get(id(track), 0)
                played, text = track.heard(to)
                utterance = track.utterance
                utterance.played_frames += played
                if verdict is Fate.POSTPONE and utterance.priority is Priority.MESSAGE:
                    utterance.rewind(sum(not c.isspace() for c in track.finished_text(to)))
                    resumed.append(utterance)
                    self._publish_end("interrupted", utterance, why, text)
                else:
                    self._postpone_or_drop(utterance, verdict, why, text)
            for utterance in reversed(resumed):
                self._schedule.add(utterance, resumed=True)
            self._queued.set()

    def _postpone_or_drop(
        self, utterance: Utterance, verdict: Fate, why: str, heard_text: str = ""
    ) -> None:
        if verdict is Fate.POSTPONE and utterance.priority is Priority.PROGRESS:
            if self._schedule.held is None:
                self._schedule.hold(utterance)
                return
            why = f"superseded by the newer progress {self._schedule.held.id}"
        self._dismiss(utterance, why, heard_text)

    def _dismiss(self, utterance: Utterance, why: str, heard_text: str = "") -> None:
        utterance.close()
        utterance.fail(SynthesisError(why, grpc.StatusCode.CANCELLED))
        self.heard.counters.cancelled += 1
        self._publish_end("cancelled", utterance, why, heard_text)

    def _publish_end(
        self, kind: Literal["interrupted", "cancelled"], utterance: Utterance, why: str, text: str
    ) -> None:
        """An utterance pushed aside: what of it was heard, and why."""
        played_ms = utterance.played_frames * 1000 // self.output.device.samplerate
        self.heard.counters.outcomes[utterance.priority.value, kind] += 1
        self.events.publish(
            Event(kind, utterance.id, played_ms=played_ms, text=text.strip(), reason=why)
        )

    # -- the worker ----------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while (utterance := self._schedule.pop()) is None:
                self._queued.clear()
                await self._queued.wait()
            track = Track(utterance)
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

    async def _play(self, track: Track) -> None:
        output, utterance = self.output, track.utterance
        sink = _RingSink(self.heard, self.output, track, self._stall)
        try:
            await output.stream.prepare()
            output.begin_utterance()
            chime = self._chimes.get(utterance.priority)
            if chime is not None and utterance.runs == 0 and utterance.sound is None:
                await sink.audio(chime)
                track.speech_offset = len(chime)
            result = await self._sounded(utterance, sink)
            if result is None:
                result = await self._recalled(utterance, sink)
            if result is None:
                result = await self._synthesis.synthesize(
                    self._waking(utterance), sink, utterance.voice
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
            # What it has in the ring still plays: that much of it is heard (unless the
            # device itself failed it).
            heard = "" if isinstance(err, OutputError) else track.heard(track.end)[1]
            self.heard.fail(utterance, err, heard)
            return
        end = output.end_utterance()
        if result.fallback:
            self.heard.counters.fallbacks += 1
        if result.resumed:
            self.heard.counters.resumed += 1
        if result.first_audio_delay is not None:
            _LOGGER.info(
                "%s: %d chars, %.2f s of audio, first audio after %.0f ms%s",
                utterance.id,
                utterance.chars,
                result.frames / output.device.samplerate,
                result.first_audio_delay * 1000,
                " (local fallback)"
                if result.fallback
                else " (phrase cache)"
                if result.cached
                else "",
            )
        self.heard.written(track, end)

    async def _sounded(self, utterance: Utterance, sink: _RingSink) -> CallResult | None:
        """An utterance that is a sound and no text: the sound."""
        if utterance.sound is None:
            return None
        await self.output.stream.wake()
        await sink.audio(utterance.sound)
        return CallResult(len(utterance.sound), "", None)

    async def _recalled(self, utterance: Utterance, sink: _RingSink) -> CallResult | None:
        """Its audio from the phrase cache, when its whole text is known and kept there."""
        text = utterance.whole_text
        if self._recall is None or text is None:
            return None
        await self.output.stream.wake()
        return await self._recall.recall(text, sink, utterance.recalled, utterance.voice)

    async def _waking(self, utterance: Utterance) -> AsyncIterator[Piece]:
        """The utterance's text, waking the output as its first piece is asked for: the
        stream opens in a worker thread while the call connects and its first audio is
        on the way."""
        await self.output.stream.wake()
        async for piece in utterance.pieces():
            yield piece


class _RingSink:
    """A call's output for one utterance: audio into the ring, and marks beside it."""

    def __init__(self, heard: Heard, output: AudioOutput, track: Track, stall: float) -> None:
        self._heard = heard
        self._output = output
        self._stall = stall
        self._track = track

    async def audio(self, frames: Frames) -> None:
        track = self._track
        if track.start is None:
            self._heard.starting(track, self._output.ring.write_pos)
        before = self._output.ring.write_pos
        try:
            await self._output.write(frames, self._stall)
        finally:
            # A write cancelled half-way left part of the chunk in the ring.
            track.written += self._output.ring.write_pos - before

    def spoken(self, spoken: Spoken) -> None:
        self._heard.spoken(self._track, spoken)

    async def withdraw(self, frames: int) -> int:
        """Cuts the track's last ``frames`` out of the ring: unheard, silently; if they
        are playing, faded out at once (what was heard of them stays counted)."""
        track, output = self._track, self._output
        ring = output.ring
        end = ring.write_pos
        asked = start = end - min(frames, track.written - track.speech_offset)
        if track.start is None or start >= end:
            return 0
        if ring.read_pos >= end:
            start = end  # all of it was heard: it is only spoken again
        elif ring.read_pos <= start:
            await output.cut(start, end, FLUSH_TIMEOUT)
        else:
            # Its marks must not fire while the fade runs and the read position jumps.
            self._heard.unmark(track, ring.read_pos)
            if not await output.cut(None, end, FLUSH_TIMEOUT):
                _LOGGER.warning("the audio callback did not confirm the fade-out in time")
            start = min(max(start, output.flushed_at), end)
        self._heard.withdrawn(track, asked, start, end)
        return end - start
