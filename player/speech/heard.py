"""What is heard when: marks left in the ring beside the audio, fired as events once the
callback's read position gets there.

Each utterance's audio is a `Track`: where it sits in the ring, and which text each
stretch of it speaks. Its marks (first frame, each text chunk, last frame) are published
as `started`, `text` and `finished` when the callback reaches them: that is when they
are heard, not when the server sent them.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from player.audio.output import AudioOutput
from player.errors import OutputError, SynthesisError
from player.speech.events import Event, EventBus
from player.speech.utterance import Utterance
from player.synthesis.interface import Spoken

_LOGGER = logging.getLogger(__name__)


@dataclass
class Counters:
    utterances: int = 0
    """Utterances played to the end."""
    errors: int = 0
    """Utterances that failed."""
    cancelled: int = 0
    """Utterances stopped, cancelled, dropped or pushed aside by a higher priority."""
    fallbacks: int = 0
    """Utterances the local synthesizer spoke because the endpoint was unreachable."""
    resumed: int = 0
    """Utterances whose call broke off and was resumed by a new one."""
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    """By (priority, event kind): utterances that ended ("finished", "cancelled",
    "error"), and messages "interrupted" to be spoken again later."""
    synthesis_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    """Utterances whose synthesis failed, by the name of the gRPC status code."""
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    """Utterances asked for, by the front they came through ("control", "mqtt", "ssip")."""


@dataclass(eq=False)
class Track:
    """Where one synthesis call's audio sits in the ring, and what it says where."""

    utterance: Utterance
    start: int | None = None
    """Ring position of its first frame, once written."""
    written: int = 0
    """Frames written so far (a chime's included)."""
    speech_offset: int = 0
    """Frames of chime before the speech."""
    spoken: list[tuple[int, str]] = field(default_factory=list)
    """(ring position, text) of each text chunk, in order."""
    created: float = field(default_factory=time.monotonic)
    holes: list[tuple[int, int]] = field(default_factory=list)
    """Ring ranges [start, end) of its audio taken back (`withdraw`), in order: ring
    positions only grow, so audio written after one lies beyond it."""

    @property
    def end(self) -> int:
        """Ring position just after its last frame so far."""
        if self.start is None:
            return 0
        return self.start + self.written + sum(end - start for start, end in self.holes)

    def position(self, offset: int) -> int:
        """Ring position of the frame ``offset`` frames into the audio it kept."""
        assert self.start is not None
        position = self.start + offset
        for start, end in self.holes:
            if start <= position:
                position += end - start
        return position

    def heard(self, heard_to: int) -> tuple[int, str]:
        """Frames played, and the text of the chunks begun, once the callback has read
        up to ring position ``heard_to``."""
        if self.start is None:
            return 0, ""
        to = min(max(heard_to, self.start), self.end)
        skipped = sum(max(0, min(end, to) - start) for start, end in self.holes)
        played = to - self.start - skipped
        # Services may send each chunk stripped: words of two chunks must not run together.
        begun = (text.strip() for position, text in self.spoken if position < heard_to)
        return played, " ".join(text for text in begun if text)

    def finished_text(self, heard_to: int) -> str:
        """The text of the chunks heard to their end."""
        if not self.spoken:
            # Cut before its first text chunk came (a call still connecting).
            return ""
        ends = [position for position, _ in self.spoken[1:]]
        ends.append(self.end)
        return "".join(
            text for (_, text), end in zip(self.spoken, ends, strict=True) if end <= heard_to
        )


@dataclass(order=True)
class _Mark:
    position: int
    """Fires once the callback has read up to here."""
    seq: int
    kind: Literal["started", "text", "finished"] = field(compare=False)
    track: Track = field(compare=False)
    spoken: Spoken | None = field(default=None, compare=False)


class Heard:
    """Follows the callback through the marks, for the daemon's life (`run`)."""

    def __init__(self, output: AudioOutput, events: EventBus, stall_timeout: float) -> None:
        self._output = output
        self._events = events
        self._stall = stall_timeout
        self.pending: list[Track] = []
        """Fully written, not yet played to the end; oldest first."""
        self._marks: list[_Mark] = []  # a heap
        self._marks_added = asyncio.Event()
        self._seq = itertools.count()
        self.counters = Counters()
        self.last_error = ""

    def starting(self, track: Track, position: int) -> None:
        """Its first frame goes to ring ``position``."""
        track.start = position
        self._mark(position + 1, "started", track)

    def spoken(self, track: Track, spoken: Spoken) -> None:
        ring = self._output.ring
        if track.start is None:
            return  # text without audio: nothing to hear it by
        offset = spoken.start_ms * self._output.device.samplerate // 1000
        position = min(track.position(track.speech_offset + offset), ring.write_pos - 1)
        track.spoken.append((position, spoken.text))
        self._mark(position + 1, "text", track, spoken)

    def written(self, track: Track, end: int) -> None:
        """All of it is in the ring, up to ``end``."""
        self.pending.append(track)
        self._mark(end, "finished", track)

    def unmark(self, track: Track, after: int) -> None:
        """Its audio beyond ring position ``after`` is being taken back: none of its
        marks there will fire."""
        self._marks = [m for m in self._marks if m.track is not track or m.position <= after]
        heapq.heapify(self._marks)
        track.spoken = [(position, text) for position, text in track.spoken if position < after]

    def withdrawn(self, track: Track, asked: int, start: int, end: int) -> None:
        """Its audio from ring position ``asked`` on is to be spoken again, and that in
        [start, end) was taken back unheard (``start`` is later than ``asked`` if the
        callback was already playing it)."""
        # A text's place is known to the millisecond, and one that came just before its
        # audio sits on the last frame written: within that of a frame, it starts there.
        slack = self._output.device.samplerate // 1000 + 1
        self.unmark(track, start - slack)
        # A text begun but spoken again is left out of what was heard, or a message cut
        # later would be rewound by it twice; its event stays, as it was heard.
        track.spoken = [(p, text) for p, text in track.spoken if p < asked - slack]
        track.written -= end - start
        if track.written == 0:
            # Nothing of it is left: it starts again where its next frame goes.
            track.start = None
            track.holes.clear()
        elif end > start:
            track.holes.append((start, end))

    def forget(self, track: Track) -> None:
        """It was cut out of the ring: none of its marks will fire."""
        if track in self.pending:
            self.pending.remove(track)
        self._marks = [mark for mark in self._marks if mark.track is not track]
        heapq.heapify(self._marks)

    def fail(self, utterance: Utterance, err: Exception, text: str = "") -> None:
        """It failed; ``text`` is what of it is heard (its audio that stays in the ring)."""
        self.counters.errors += 1
        self.counters.outcomes[utterance.priority.value, "error"] += 1
        if isinstance(err, SynthesisError):
            self.counters.synthesis_errors[err.code.name] += 1
        self.last_error = str(err)
        if isinstance(err, OutputError):
            _LOGGER.warning("%s: %s", utterance.id, err)
        utterance.fail(err)
        self._events.publish(Event("error", utterance.id, error=str(err), text=text or None))

    def _mark(
        self,
        position: int,
        kind: Literal["started", "text", "finished"],
        track: Track,
        spoken: Spoken | None = None,
    ) -> None:
        heapq.heappush(self._marks, _Mark(position, next(self._seq), kind, track, spoken))
        self._marks_added.set()

    async def run(self) -> None:
        output = self._output
        while True:
            while not self._marks:
                self._marks_added.clear()
                await self._marks_added.wait()
            # Marks are only ever left where audio has already been written, so waiting
            # for the callback to get there cannot mistake a slow server for a dead device.
            try:
                await output.wait_position(self._marks[0].position, self._stall)
            except OutputError as err:
                # The utterance being synthesised fails by itself, when its own last mark
                # cannot be reached either.
                failed = list(self.pending)
                self._marks.clear()
                self.pending.clear()
                for track in failed:
                    self.fail(track.utterance, err)
                continue
            read = output.ring.read_pos
            # A cut may have removed marks meanwhile, or jumped past them.
            while self._marks and self._marks[0].position <= read:
                self._fire(heapq.heappop(self._marks))

    def _fire(self, mark: _Mark) -> None:
        track = mark.track
        utterance = track.utterance
        if mark.kind == "started":
            asked = utterance.created if utterance.runs <= 1 else track.created
            delay = int((time.monotonic() - asked) * 1000)
            self._events.publish(Event("started", utterance.id, first_audio_ms=delay))
        elif mark.kind == "text":
            assert mark.spoken is not None
            self._events.publish(
                Event(
                    "text",
                    utterance.id,
                    text=mark.spoken.text.strip(),
                    start_ms=mark.spoken.start_ms,
                    word_timings=mark.spoken.words,
                )
            )
        else:
            if self.pending and self.pending[0] is track:
                self.pending.pop(0)
            self.counters.utterances += 1
            self.counters.outcomes[utterance.priority.value, "finished"] += 1
            frames = utterance.played_frames + track.written
            utterance.resolve(frames)
            played_ms = frames * 1000 // self._output.device.samplerate
            self._events.publish(Event("finished", utterance.id, played_ms=played_ms))
