"""The producer's side of the ring: the jitter buffer's gate, writes that wait for room
(backpressure), cuts and pause. The stream itself, its callback and its lifetime are in
`player.audio.stream`; what the callback does with the ring is `player.audio.drain`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from player.audio.devices import DeviceInfo
from player.audio.drain import Cut, Drain, add_cut
from player.audio.jitter import JitterEstimate
from player.audio.ring import Frames, RingBuffer
from player.audio.stream import OutputStream, StreamFactory, sounddevice_stream
from player.audio.telemetry import Telemetry
from player.config import AudioSettings
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

MAX_NAP = 0.1
"""Seconds: the longest the producer sleeps before looking at the ring again."""


class AudioOutput:
    """Owns the ring buffer and the output stream for the daemon's whole life."""

    def __init__(
        self,
        settings: AudioSettings,
        device: DeviceInfo,
        stream_factory: StreamFactory = sounddevice_stream,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        # Seconds, monotonic; the event loop's own clock is the one for timers. A test
        # replaying arrival schedules in simulated time passes both.
        self._clock = clock
        self._settings = settings
        rate = device.samplerate
        self.ring = RingBuffer(max(device.block_frames * 2, rate * settings.buffer_ms // 1000))
        half = self.ring.capacity // 2
        self.prebuffer_frames = min(half, rate * settings.prebuffer_ms // 1000)
        bursty = min(half, rate * settings.jitter_prebuffer_ms // 1000)
        self.jitter = JitterEstimate(rate, self.prebuffer_frames, bursty, half)
        self.drain = Drain(self.ring, max(1, round(rate * settings.fade_ms / 1000)))
        # Plays what is held once nothing has arrived for the estimate's wait limit, even
        # if less came than it asks for: a stalled input must not wait for audio that is
        # not coming.
        self._gate_timer: asyncio.TimerHandle | None = None
        self._cut_seq = 0
        self._holds_seen = 0  # the callback's hold count the estimate has been told of
        self.telemetry = Telemetry()  # callback rows and producer rows, see its module
        self.stream = OutputStream(settings, device, self.drain, self.telemetry, stream_factory)

    # -- producing (asyncio side) ----------------------------------------------------

    def begin_utterance(self) -> None:
        """Before the first frame of an utterance: hold playback until its arrivals say
        enough is held, unless earlier speech is still playing (then the new one follows
        seamlessly)."""
        if self.ring.available() == 0:
            self.drain.gate_open = False
        self._cancel_gate_timer()
        self.jitter.begin(self._clock())
        self.drain.released = self._holds_seen = self.drain.holds  # a cut one's hold is over
        self.drain.expecting = True

    def end_utterance(self) -> int:
        """After the last frame: returns the ring position where this utterance ends."""
        self.drain.end_mark = self.ring.write_pos
        self.drain.expecting = False
        self.drain.gate_open = True
        self.drain.released = self.drain.holds  # nothing more is coming: play what is held
        self._cancel_gate_timer()
        return self.drain.end_mark

    async def write(self, frames: Frames, stall_timeout: float) -> None:
        """Queue frames, waiting for room: memory stays bounded, so a long text simply
        slows the reader of the gRPC stream down. Raises OutputError if the callback
        consumes nothing for ``stall_timeout`` seconds."""
        ring = self.ring
        self.telemetry.chunk(time.perf_counter_ns(), ring.write_pos, ring.available())
        if self._holds_seen != self.drain.holds:
            self._holds_seen = self.drain.holds
            self.jitter.ran_dry()  # the callback ran dry since the last chunk
        self.jitter.arrived(self._clock(), len(frames))
        done = ring.write(frames)
        self._maybe_open_gate()
        while done < len(frames):
            # Wait for room for the rest (or a quarter of the ring, for a chunk larger than
            # it), not a block at a time: fewer wake-ups.
            want = min(len(frames) - done, ring.capacity // 4)
            await self._wait_progress(functools.partial(_short_of, ring, want), stall_timeout)
            done += ring.write(frames[done:])
            self._maybe_open_gate()

    def _maybe_open_gate(self) -> None:
        drain = self.drain
        if drain.gate_open and drain.holds == drain.released:
            return
        self._cancel_gate_timer()
        if self._held() >= self.jitter.need():
            self._play()
        else:
            wait = self.jitter.wait_limit()
            self._gate_timer = asyncio.get_running_loop().call_later(wait, self._gate_timeout)

    def _play(self) -> None:
        if _LOGGER.isEnabledFor(logging.DEBUG):
            rate = self.device.samplerate
            _LOGGER.debug(
                "playing: %d ms held, %d ms needed (spread %.0f ms, %d dry spells)",
                self.ring.available() * 1000 // rate,
                self.jitter.need() * 1000 // rate,
                self.jitter.spread * 1000,
                self.jitter.dry_spells,
            )
        self.drain.gate_open = True
        self.drain.released = self.drain.holds
        self._cancel_gate_timer()

    def _gate_timeout(self) -> None:
        self._gate_timer = None
        if self._held():
            self._play()

    def _held(self) -> int:
        """Frames that will play: those in the ring less the cuts ahead (audio taken back
        is still there until the callback jumps it)."""
        read_pos = self.ring.read_pos
        cut = sum(max(0, c.end - max(c.start, read_pos)) for c in self.drain.cuts)
        return self.ring.available() - cut

    def _cancel_gate_timer(self) -> None:
        if self._gate_timer is not None:
            self._gate_timer.cancel()
            self._gate_timer = None

    async def flush(self, wait_limit: float) -> bool:
        """Fade out what is playing and drop everything queued. True once the callback
        did it; False if it did not answer in time."""
        return await self.cut(None, self.ring.write_pos, wait_limit)

    async def cut(self, start: int | None, end: int, wait_limit: float) -> bool:
        """Drop ring frames [start, end): None starts at what is playing now, faded out,
        and waits (up to ``wait_limit``) for the callback to confirm; a later start is
        jumped over silently when the callback gets there. False if unconfirmed."""
        if transitions := self.stream.transitions():
            await asyncio.wait(transitions, timeout=wait_limit)
        drain, ring = self.drain, self.ring
        if self.stream.transitions():
            # A stream is still being opened in its thread and may start calling back at
            # any moment: only the callback may move the read position, so it jumps this.
            at = ring.read_pos if start is None else start
            drain.cuts = add_cut(drain.cuts, Cut(at, end, 0), ring.read_pos)
            return start is not None
        if not self.stream.running:
            # No callback is running, so this side may move the read position itself.
            if start is None or start <= ring.read_pos:
                drain.cut_at = ring.read_pos
                ring.skip_to(end)
            else:
                drain.cuts = add_cut(drain.cuts, Cut(start, end, 0), ring.read_pos)
            if ring.available() == 0:
                drain.gate_open = False
            return True
        if start is not None:
            drain.cuts = add_cut(drain.cuts, Cut(start, end, 0), ring.read_pos)
            return True
        self._cut_seq += 1
        target = self._cut_seq
        drain.cuts = add_cut(drain.cuts, Cut(ring.read_pos, end, target), ring.read_pos)
        period = self.device.block_frames / self.device.samplerate
        deadline = self._clock() + wait_limit
        while drain.cut_done != target:
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(period / 2)
        return True

    @property
    def flushed_at(self) -> int:
        """Ring position up to which audio was heard before the last cut of what played."""
        return self.drain.cut_at

    @property
    def underruns(self) -> int:
        return self.drain.underruns

    @property
    def frames_played(self) -> int:
        return self.drain.frames_played

    def pause(self) -> None:
        """Go quiet within a block (after a short fade), keeping the position."""
        self.drain.paused = True

    def resume(self) -> None:
        """Fade back in from where the pause cut in."""
        self.drain.paused = False

    @property
    def paused(self) -> bool:
        return self.drain.paused

    async def wait_position(self, position: int, stall_timeout: float) -> None:
        """Until the callback has consumed the ring up to ``position``."""
        await self._wait_progress(lambda: position - self.ring.read_pos, stall_timeout)

    async def _wait_progress(self, short: Callable[[], int], stall_timeout: float) -> None:
        """Until the callback has consumed enough that ``short()`` (frames still to go)
        is <= 0; fail if it stops consuming. Sleeps about as long as those frames take to
        play (at least a block, at most MAX_NAP): waking every block for a whole
        utterance would cost more CPU than playing it."""
        rate = self.device.samplerate
        period = self.device.block_frames / rate
        last, since = self.ring.read_pos, self._clock()
        while (frames := short()) > 0:
            await asyncio.sleep(min(max(period, frames / rate), MAX_NAP))
            now = self._clock()
            if self.ring.read_pos != last:
                last, since = self.ring.read_pos, now
            elif self.drain.paused or self.stream.waiting_for_device or self.stream.starting:
                # A paused device is not a dead one; a lost one may come back; a starting
                # one may be a sink waking from suspend (each within its own bound).
                since = now
            elif now - since >= stall_timeout or not self.stream.healthy:
                raise OutputError(self.stream.failure or "the audio device stopped taking audio")


def _short_of(ring: RingBuffer, want: int) -> int:
    """Frames of room still missing before ``want`` frames fit."""
    return want - ring.free()
