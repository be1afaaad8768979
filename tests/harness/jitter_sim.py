"""Replays a chunk arrival schedule through the real jitter buffer, in simulated time.

The real `AudioOutput` (gate, gate timer, refill holds) and its real `Drain` (the
callback's side) run on an event loop whose clock only moves when nothing is left to do
now: a 10 ms callback and each chunk's arrival are timers on that loop, so a schedule of
many seconds replays in milliseconds and the same schedule always gives the same result.
Nothing here decides when to play; it only feeds arrivals in and listens to what comes out.

The schedules are the tone server's own (`Pacer`, `Chunker`, `ToneScript`), cut as the
daemon sends a whole text: one piece per sentence, all at the start of the call.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from player.audio.jitter import JitterEstimate
from player.audio.output import AudioOutput
from player.speech.sentences import SentenceSplitter
from tests.harness.fake_stream import FakeFlags, FakeStream, make_output
from tests.harness.tone_server import ToneScript, script_pacer
from tests.harness.tone_synth import BYTES_PER_SAMPLE, Chunker, piece_samples

RATE = 48000
"""Hertz: the rate the daemon asks the service for (the test sink's)."""
BLOCK_S = 0.010
"""Seconds per callback, the daemon's default `block_ms`."""
GAP_S = 0.010
"""A silence longer than this between two sounds is a gap, as the benchmark counts them."""
_STALL_TIMEOUT = 3600.0
"""Seconds: no simulated callback ever stops, so the writer's stall check never fires."""


@dataclass(frozen=True)
class Arrival:
    at: float
    """Seconds after the request."""
    frames: int
    """Frames the chunk decodes to (an odd byte waits for the next chunk, as in the client)."""


@dataclass(frozen=True)
class Replay:
    """What a listener heard."""

    first_audio_s: float
    """Seconds from the request to the first sample played."""
    silences: tuple[float, ...]
    """Seconds of each silence between the first sample and the last, in order."""
    need_at_start_s: float
    """Seconds of audio the estimate asked for when playback started: the buffer it chose."""
    held_at_start_s: float
    """Seconds of audio held when playback started: at least `need_at_start_s`, unless
    the gate's wait limit played what there was."""
    lateness_s: float
    """Seconds: the schedule's worst dry spell in hindsight, see `lateness`."""
    underruns: int

    @property
    def gaps(self) -> tuple[float, ...]:
        """The silences a listener hears as a stutter."""
        return tuple(s for s in self.silences if s > GAP_S)

    @property
    def covered(self) -> bool:
        """The buffer the estimate chose outlasts the schedule's lateness by a callback
        block (the callback's own granularity): had it held that, no gap was possible."""
        return self.lateness_s + BLOCK_S <= self.need_at_start_s


def sentences(text: str) -> list[str]:
    """The pieces the daemon sends for ``text``: one per sentence, each ending in a space."""
    splitter = SentenceSplitter()
    return [f"{s} " for s in (*splitter.feed(text), splitter.flush()) if s]


def tone_schedule(script: ToneScript, pieces: Sequence[str], rate: int = RATE) -> list[Arrival]:
    """When the tone server sends each chunk of ``pieces`` (all asked for at time 0) under
    ``script``, with the RNG of the call it seeds with ``script.jitter_seed``."""
    pacer = script_pacer(script, random.Random(script.jitter_seed))
    chunker = Chunker(script.chunk_bytes)
    arrivals: list[Arrival] = []
    produced, sent = 0, 0  # samples of tone, bytes of it sent
    for text in pieces:
        pacer.piece_arrived(0.0, produced / rate)
        count = piece_samples(len(text), script.ms_per_char, rate)
        produced += count
        for chunk in chunker.split(bytes(count * BYTES_PER_SAMPLE)):
            frames = (sent + len(chunk)) // BYTES_PER_SAMPLE - sent // BYTES_PER_SAMPLE
            sent += len(chunk)
            at = pacer.due(sent / (BYTES_PER_SAMPLE * rate))
            arrivals.append(Arrival(at, frames))
    return arrivals


def lateness(arrivals: Sequence[Arrival], rate: int = RATE) -> float:
    """Seconds: the most audio a player would have had to hold, just after some chunk
    arrived, to keep playing until every later chunk came. Rate-free, from the whole
    schedule, in hindsight: a player that starts holding this much (and a block more, for
    the callback's granularity) never runs dry."""
    est = JitterEstimate(rate, 0, 0, 0)
    for arrival in arrivals:
        est.arrived(arrival.at, arrival.frames)
    return est.worst_dry_spell


@dataclass
class _Listener:
    """The callback side: calls the stream's callback every block and notes the sound."""

    output: AudioOutput
    stream: FakeStream
    loop: asyncio.AbstractEventLoop
    phase: float
    block: int
    drained: asyncio.Future[None]
    end: int | None = None
    ticks: int = 0
    first_at: float = math.nan
    held_at_start: int = 0
    need_at_start: int = 0
    last_end: int | None = None  # output frame where the latest sound ended
    silences: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._out = np.zeros((self.block, 1), dtype=np.float32)
        self._flags = FakeFlags()
        self.loop.call_at(self.phase, self._tick)

    def _tick(self) -> None:
        drain, rate = self.output.drain, self.output.device.samplerate
        held, before = self.output.ring.available(), drain.frames_played
        self.stream.callback(self._out, self.block, None, self._flags)
        done = drain.frames_played - before
        start = self.ticks * self.block
        if done:
            if self.last_end is None:
                self.first_at, self.held_at_start = self.loop.time(), held
                self.need_at_start = self.output.jitter.need()
            elif start > self.last_end:
                self.silences.append((start - self.last_end) / rate)
            self.last_end = start + done
        self.ticks += 1
        if self.end is not None and self.output.ring.read_pos >= self.end:
            if not self.drained.done():
                self.drained.set_result(None)
            return
        self.loop.call_at(self.phase + self.ticks * self.block / rate, self._tick)


_DRAIN_BOUND_S = 60.0
"""Simulated seconds, beyond the audio's own length, for the last of it to play."""


async def _replay(arrivals: Sequence[Arrival], phase: float, audio: dict[str, float]) -> Replay:
    loop = asyncio.get_running_loop()
    output, (stream,) = make_output(RATE, 1, loop.time, **audio)
    listener = _Listener(
        output, stream, loop, phase, output.device.block_frames, loop.create_future()
    )
    output.begin_utterance()
    for arrival in arrivals:
        await asyncio.sleep(arrival.at - loop.time())
        await output.write(np.full(arrival.frames, 0.5, np.float32), _STALL_TIMEOUT)
    listener.end = output.end_utterance()
    # Simulated seconds: a buffer that never plays its audio fails instead of ticking on.
    audio_s = sum(arrival.frames for arrival in arrivals) / RATE
    await asyncio.wait_for(listener.drained, loop.time() + audio_s + _DRAIN_BOUND_S)
    return Replay(
        first_audio_s=listener.first_at,
        silences=tuple(listener.silences),
        need_at_start_s=listener.need_at_start / RATE,
        held_at_start_s=listener.held_at_start / RATE,
        lateness_s=lateness(arrivals),
        underruns=output.underruns,
    )


def replay(arrivals: Sequence[Arrival], phase: float = 0.0, **audio: float) -> Replay:
    """Play ``arrivals`` (the request at time 0) through a fresh `AudioOutput` with the
    `AudioSettings` fields in ``audio`` (defaults otherwise); the first callback comes
    ``phase`` seconds after the request, then one every block."""
    loop = _SimulatedLoop()
    try:
        return loop.run_until_complete(_replay(arrivals, phase, audio))
    finally:
        loop.close()


class _SimulatedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of waiting for it."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Timeless(self))

    def time(self) -> float:
        return self.now


class _Timeless(selectors.SelectSelector):
    """Answers at once, moving the loop's clock on by the timeout it was given."""

    def __init__(self, loop: _SimulatedLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("the simulation waits for something no timer will bring")
        self._loop.now += max(0.0, timeout)
        return super().select(0)
