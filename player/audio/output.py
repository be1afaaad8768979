"""The output stream: its lifetime, and the producer's side of the ring.

The callback (see `player.audio.drain`) runs on PortAudio's thread and must never let an
exception out: sounddevice would silently stop the stream and the speaker would go dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from player.audio.devices import DeviceInfo
from player.audio.drain import Cut, Drain, add_cut
from player.audio.ring import Frames, RingBuffer
from player.audio.telemetry import Telemetry
from player.config import AudioSettings
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)


MAX_NAP = 0.1
"""Seconds: the longest the producer sleeps before looking at the ring again."""


class Stream(Protocol):
    """The part of ``sounddevice.OutputStream`` we use (fakes in tests implement it)."""

    @property
    def active(self) -> bool: ...
    @property
    def latency(self) -> float: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


StreamFactory = Callable[..., Stream]


def _sounddevice_stream(**kwargs: Any) -> Stream:
    import sounddevice

    stream: Stream = sounddevice.OutputStream(**kwargs)
    return stream


class AudioOutput:
    """Owns the ring buffer and the output stream for the daemon's whole life."""

    def __init__(
        self,
        settings: AudioSettings,
        device: DeviceInfo,
        stream_factory: StreamFactory = _sounddevice_stream,
    ) -> None:
        self.device = device
        self._settings = settings
        self._factory = stream_factory
        rate = device.samplerate
        self.ring = RingBuffer(max(device.block_frames * 2, rate * settings.buffer_ms // 1000))
        self.prebuffer_frames = min(self.ring.capacity // 2, rate * settings.prebuffer_ms // 1000)
        self.drain = Drain(self.ring, max(1, round(rate * settings.fade_ms / 1000)))
        self._stream: Stream | None = None
        # Idle stop: the stream is stopped, not closed, after idle_stop_ms of silence and
        # started again in a worker thread when speech comes. The lock orders the two.
        self._suspended = False
        self._starting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        # Opens the gate prebuffer_ms after an utterance's first frame even if less came:
        # a short text, or a stalled input, must not wait for more audio.
        self._gate_timer: asyncio.TimerHandle | None = None
        self._transition = asyncio.Lock()
        self._cut_seq = 0
        self.callback_failed = False  # callback
        self.last_callback = 0.0  # callback: time.monotonic() of the last call
        self.telemetry = Telemetry()  # callback rows and producer rows, see its module

    # -- the callback (PortAudio thread) ---------------------------------------------

    def _callback(self, outdata: Frames, frames: int, _time: Any, _status: Any) -> None:
        started = time.perf_counter_ns()
        try:
            self.last_callback = time.monotonic()
            read_from = self.ring.read_pos
            read = self.drain.fill(outdata, frames)
            self.telemetry.callback(started, time.perf_counter_ns(), read_from, read)
        except BaseException:
            self.callback_failed = True
            # Nothing may escape into PortAudio, not even from the zero-fill.
            with contextlib.suppress(BaseException):
                outdata.fill(0.0)

    # -- stream lifetime (asyncio side) ----------------------------------------------

    def open(self) -> None:
        """Open and start the stream; raises OutputError with the device's name."""
        self.close()
        self.callback_failed = False
        try:
            stream = self._factory(
                device=self._settings.device,
                samplerate=self.device.samplerate,
                channels=self.device.channels,
                dtype="float32",
                blocksize=self.device.block_frames,
                latency="low",
                callback=self._callback,
            )
            stream.start()
        except Exception as err:
            raise OutputError(f"cannot open audio device {self.device.name!r}: {err}") from err
        self._stream = stream
        self._suspended = False
        _LOGGER.info(
            "audio output open: %s, %d Hz, %d channel(s), %d-frame blocks, latency %.0f ms",
            self.device.name,
            self.device.samplerate,
            self.device.channels,
            self.device.block_frames,
            stream.latency * 1000,
        )

    @property
    def running(self) -> bool:
        """The callback is being called."""
        return self._stream is not None and self._stream.active and not self.callback_failed

    @property
    def healthy(self) -> bool:
        """Running, or stopped for idleness, or on the way between the two."""
        if self._stream is None or self.callback_failed:
            return False
        return self._stream.active or self._suspended or bool(self._transitions())

    def _transitions(self) -> list[asyncio.Future[None]]:
        """Starts and stops still running in their threads."""
        return [f for f in (self._starting, self._stopping) if f is not None and not f.done()]

    @property
    def stream_state(self) -> str:
        """For status: see control.proto's Status.stream."""
        if not self.healthy:
            return "failed"
        if self._starting is not None:
            return "starting"
        if self._suspended:
            return "stopping" if self._transitions() else "idle"
        return "running"

    async def prepare(self) -> None:
        """Before an utterance: reopen a stream that died. One stopped for idleness is
        left for wake()."""
        async with self._transition:
            if not self._suspended and self._starting is None:
                self.ensure_open()

    async def wake(self) -> None:
        """Start a stream stopped for idleness, in the background: its start-up (~15 ms
        through ALSA's pulse plugin) ends long before a synthesis call's first audio, and
        frames queue in the ring meanwhile."""
        async with self._transition:
            if self._suspended:
                self._suspended = False
                self._starting = asyncio.create_task(self._start_again())

    async def _start_again(self) -> None:
        stream = self._stream
        assert stream is not None
        try:
            await asyncio.to_thread(stream.start)
        except Exception as err:
            _LOGGER.warning("starting the audio stream again failed: %s", err)
            self.callback_failed = True  # not healthy: the next utterance reopens it
        finally:
            self._starting = None

    async def stop_when_idle(self, busy: Callable[[], bool]) -> None:
        """For the daemon's life: stop the stream after idle_stop_ms without speech. A
        running stream wakes the CPU every block even when silent."""
        limit = self._settings.idle_stop_ms / 1000
        if limit <= 0:
            return
        quiet_since = time.monotonic()
        while True:
            await asyncio.sleep(min(limit, 0.5))
            now = time.monotonic()
            if busy() or not self._quiet():
                quiet_since = now
                continue
            if now - quiet_since < limit:
                continue
            async with self._transition:
                if busy() or not self._quiet() or self._stream is None:
                    continue
                # Set first, so the stream is never neither running nor suspended.
                self._suspended = True
                # Shielded: a cancelled wait must not let aclose() run beside the thread.
                self._stopping = asyncio.ensure_future(asyncio.to_thread(self._stream.stop))
                try:
                    await asyncio.shield(self._stopping)
                except Exception as err:
                    _LOGGER.warning("stopping the idle audio stream failed: %s", err)
                    self._suspended = False
                    self.callback_failed = True
                    continue
                _LOGGER.debug("audio stream stopped after %.1f s of silence", limit)

    def _quiet(self) -> bool:
        return (
            self.running
            and self._starting is None
            and not self.drain.expecting
            and self.ring.available() == 0
        )

    async def aclose(self) -> None:
        """Close, after any start in progress has finished (it runs in a thread)."""
        if transitions := self._transitions():
            await asyncio.wait(transitions)
        self.close()

    def ensure_open(self) -> None:
        """Reopen the stream if the device went away or the callback failed."""
        if self.healthy:
            return
        if self._stream is not None:
            _LOGGER.warning("audio output stopped (device gone or callback failed); reopening")
        self.ring.discard()  # the stream is not running, so nothing else reads the ring
        self.drain.gate_open = False
        self.drain.cuts = ()
        self.open()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.stop()
            stream.close()
        except Exception as err:
            _LOGGER.warning("closing the audio stream failed: %s", err)

    # -- producing (asyncio side) ----------------------------------------------------

    def begin_utterance(self) -> None:
        """Before the first frame of an utterance: hold playback for the prebuffer,
        unless earlier speech is still playing (then the new one follows seamlessly)."""
        if self.ring.available() == 0:
            self.drain.gate_open = False
        self._cancel_gate_timer()
        self.drain.expecting = True

    def end_utterance(self) -> int:
        """After the last frame: returns the ring position where this utterance ends."""
        self.drain.end_mark = self.ring.write_pos
        self.drain.expecting = False
        self.drain.gate_open = True
        self._cancel_gate_timer()
        return self.drain.end_mark

    async def write(self, frames: Frames, stall_timeout: float) -> None:
        """Queue frames, waiting for room: memory stays bounded, so a long text simply
        slows the reader of the gRPC stream down. Raises OutputError if the callback
        consumes nothing for ``stall_timeout`` seconds."""
        ring = self.ring
        self.telemetry.chunk(time.perf_counter_ns(), ring.write_pos, ring.available())
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
        if self.drain.gate_open:
            return
        if self.ring.available() >= self.prebuffer_frames:
            self.drain.gate_open = True
            self._cancel_gate_timer()
        elif self._gate_timer is None:
            wait = self.prebuffer_frames / self.device.samplerate
            self._gate_timer = asyncio.get_running_loop().call_later(wait, self._gate_timeout)

    def _gate_timeout(self) -> None:
        self._gate_timer = None
        if self.ring.available():
            self.drain.gate_open = True

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
        if transitions := self._transitions():
            await asyncio.wait(transitions, timeout=wait_limit)
        drain, ring = self.drain, self.ring
        if not self.running:
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
        deadline = time.monotonic() + wait_limit
        while drain.cut_done != target:
            if time.monotonic() >= deadline:
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
        last, since = self.ring.read_pos, time.monotonic()
        while (frames := short()) > 0:
            await asyncio.sleep(min(max(period, frames / rate), MAX_NAP))
            now = time.monotonic()
            if self.ring.read_pos != last:
                last, since = self.ring.read_pos, now
            elif self.drain.paused:
                since = now  # a paused device is not a dead one
            elif now - since >= stall_timeout or not self.healthy:
                raise OutputError("the audio device stopped taking audio")


def _short_of(ring: RingBuffer, want: int) -> int:
    """Frames of room still missing before ``want`` frames fit."""
    return want - ring.free()
