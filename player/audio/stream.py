"""The output stream: its lifetime (open, wake, close, judged lost or stuck) and its
callback. The loops that reopen it, move its latency and close it when idle are in
`player.audio.upkeep`.

The callback runs on PortAudio's thread. It hands the block to `Drain.fill`, writes one
telemetry row and counts what PortAudio reports; it never blocks, logs, allocates an
array or raises: an exception escaping into sounddevice would silently stop the stream
and the speaker would go dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from player.audio.devices import DeviceInfo
from player.audio.drain import Drain
from player.audio.latency import OutputLatency
from player.audio.opening import (
    PORTAUDIO,
    Arm,
    SetAside,
    Stream,
    StreamFactory,
    close_quietly,
    open_stream,
    sounddevice_stream,
)
from player.audio.recovery import LIMITS, DeviceState, Limits, reinitialise_portaudio
from player.audio.ring import Frames
from player.audio.telemetry import Telemetry
from player.audio.upkeep import Upkeep
from player.config import AudioSettings
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

__all__ = ["OutputStream", "Stream", "StreamFactory", "sounddevice_stream"]


class OutputStream(Upkeep):
    """The daemon's PortAudio output stream, reopened when its device comes back.

    After `idle_stop_ms` of silence it is closed (a running stream wakes the CPU every
    block even when silent) and opened again in a worker thread when speech comes; one
    lock orders the two. Closed rather than stopped: starting a stopped stream whose sound
    server died meanwhile blocks for good inside ALSA's pulse plugin, while opening a new
    one fails at once (and costs a few ms more).

    `watch` notices the device going away (the stream ending by itself, or falling silent
    once it has got going: see `recovery.Limits`) and reopens it with backoff,
    re-initialising PortAudio each time so that a device plugged in again is found. The
    ring is kept meanwhile: once the new stream calls back, the device counts as back and
    the callback goes on from the first frame it had not taken.
    """

    def __init__(
        self,
        settings: AudioSettings,
        device: DeviceInfo,
        drain: Drain,
        telemetry: Telemetry,
        factory: StreamFactory = sounddevice_stream,
        reinit: Callable[[], None] = reinitialise_portaudio,
        limits: Limits = LIMITS,
        set_aside: SetAside = PORTAUDIO,
        latency: OutputLatency | None = None,
    ) -> None:
        """``reinit`` has PortAudio list the devices again (only called while the
        stream is closed); ``limits`` say when a stream counts as lost; ``set_aside``
        keeps the streams whose start timed out (see `player.audio.opening`); ``latency``
        is what streams are opened with (see `player.audio.latency`)."""
        self.device = device
        self._settings = settings
        self._drain = drain
        self._telemetry = telemetry
        self._factory = factory
        self._reinit = reinit
        self._limits = limits
        self._set_aside = set_aside
        self._arm: Arm | None = None  # the current stream's
        self.latency = latency if latency is not None else OutputLatency()
        self._device_key: str | int | None = settings.device
        """How the device is asked for: after PortAudio lists devices again, an index
        may name another one, so a reopened stream asks by the name."""
        self.device_state = DeviceState(settings.device_wait_s)
        self._stream: Stream | None = None
        self._suspended = False
        self._starting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._reopening: asyncio.Future[Stream] | None = None
        self._transition = asyncio.Lock()
        self._thread_since = 0.0
        """time.monotonic() when the latest start, stop or reopening thread began."""
        self.callback_failed = False  # callback
        self.last_callback = 0.0  # callback: time.monotonic() of the last call
        self.opened_at = 0.0
        """time.monotonic() when the current stream had started: its start-up window
        (`recovery.Limits`) counts from here."""
        self.device_underruns = 0  # callback: blocks PortAudio reported as underflowed
        self._ended = False  # PortAudio thread: the stream finished

    # -- the callback (PortAudio thread) ---------------------------------------------

    def _callback(self, arm: Arm, outdata: Frames, frames: int, _time: Any, status: Any) -> None:
        started = time.perf_counter_ns()
        try:
            if not arm.armed:  # a stream set aside (see player.audio.opening)
                outdata.fill(0.0)
                return
            self.last_callback = time.monotonic()
            # The device ran dry before this call (our ring may have been full): a
            # glitch the listener heard that our own underrun count cannot see.
            if status is not None and status.output_underflow:
                self.device_underruns += 1
            read_from = self._drain.ring.read_pos
            read = self._drain.fill(outdata, frames)
            self._telemetry.callback(started, time.perf_counter_ns(), read_from, read)
        except BaseException:
            self.callback_failed = True
            # Nothing may escape into PortAudio, not even from the zero-fill.
            with contextlib.suppress(BaseException):
                outdata.fill(0.0)

    def _finished(self, arm: Arm) -> None:
        # Called when the stream ends, whether we stopped it or it died; one set aside
        # says nothing of the current one.
        if arm.armed:
            self._ended = True

    # -- lifetime (asyncio side) ---------------------------------------------------

    def _new_stream(self, retry: bool = True) -> Stream:
        """Open and start a stream (any thread); raises OutputError with the device's name.
        The same rate, channels and block as before, so the ring's audio stays valid.
        ``retry``: a start that times out is tried again (see `player.audio.opening`);
        the watcher, which backs off between attempts itself, makes one at a time."""
        if self._arm is not None:
            # The stream before is closed or dead: a late call from its thread must
            # neither read the ring beside the new one nor mark the new one ended.
            self._arm.armed = False
        stream, self._arm = open_stream(
            self._factory,
            self._set_aside,
            self._drain.ring,
            self.device.name,
            self._limits.start_s if retry else 0.0,
            self._callback,
            self._finished,
            device=self._device_key,
            samplerate=self.device.samplerate,
            channels=self.device.channels,
            dtype="float32",
            blocksize=self.device.block_frames,
            latency=self.latency.request(),
        )
        self.latency.opened(stream.latency, time.monotonic())
        # Its start-up window counts from here: callbacks made while PortAudio started
        # it primed the device and say nothing of whether it keeps going.
        self.opened_at = time.monotonic()
        # Only now: a stream whose start timed out may have ended before it was set aside.
        # One that ends from here on is seen by `active` as well.
        self._ended = False
        return stream

    def open(self, retry: bool = True) -> None:
        """Open and start the stream; raises OutputError with the device's name.
        ``retry``: see `_new_stream` (on the event loop, one attempt blocks it less)."""
        self.close()
        self.callback_failed = False
        stream = self._new_stream(retry)
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
        """Running, or closed for idleness, or on the way between the two."""
        if self.callback_failed or self.device_state.lost:
            return False
        if self._suspended or self.transitions():
            return True
        return self._stream is not None and self._stream.active

    @property
    def waiting_for_device(self) -> bool:
        """The device is lost, and audio already queued waits for it (device_wait_s).
        Looks at the stream itself first, so a writer never takes a loss the watcher has
        not seen yet for a dead device."""
        self.notice()
        return self.device_state.worth_waiting

    def notice(self) -> None:
        """Mark the device lost if the stream shows it is gone."""
        if not self.device_state.lost and (reason := self.lost_reason()) is not None:
            self.device_state.lose(reason)

    @property
    def failure(self) -> str:
        """Why audio cannot play, while the device is lost; empty otherwise."""
        return self.device_state.failure

    def lost_reason(self) -> str | None:
        """Why the stream stopped playing though nothing stopped it; None if it plays,
        or is closed for idleness, or is on the way between the two."""
        if self._suspended or self.transitions():
            return None
        stream = self._stream
        if stream is None:
            return "the audio stream is closed"
        if self._ended or not stream.active:
            return "the audio stream ended by itself (the device or the sound server went away)"
        return self._limits.lost_reason(self.opened_at, self.last_callback, time.monotonic())

    @property
    def starting(self) -> bool:
        """On its way up: opening in a thread, or open for less than `Limits.start_s` and
        not judged lost. Audio it has not taken yet waits on a slow device, not a dead
        one; the watcher, not a writer's stall timeout, judges it."""
        now, limits = time.monotonic(), self._limits
        if self.transitions():
            return now - self._thread_since < limits.start_s
        if self._stream is None or self._suspended or now - self.opened_at >= limits.start_s:
            return False
        return limits.silence(self.opened_at, self.last_callback, now) <= limits.silent_s

    @property
    def cannot_open(self) -> bool:
        """Too many streams failed to start (see `player.audio.opening.MOST_SET_ASIDE`):
        the device cannot be used until a restart."""
        return self._set_aside.full

    def has_run(self) -> bool:
        """The current stream has called back since it started."""
        stream = self._stream
        return stream is not None and stream.active and self.last_callback >= self.opened_at

    def stuck_s(self) -> float:
        """Seconds the audio side has not answered: how long a start, stop or reopening
        has been running in its thread, or else how long a running stream has gone without
        a callback (held against it as `recovery.Limits.silence` does: a starting stream is
        not stuck); 0 while it is closed for idleness or between reopening attempts.
        PortAudio calls that never return (a sound server that hangs) show up here even
        after `watch` has given the stream up as lost."""
        now = time.monotonic()
        if self.transitions():
            return now - self._thread_since
        stream = self._stream
        if stream is None or self._suspended or self._ended or not stream.active:
            return 0.0
        return max(0.0, self._limits.silence(self.opened_at, self.last_callback, now))

    def transitions(self) -> list[asyncio.Future[Any]]:
        """Starts, stops and reopenings still running in their threads."""
        running = (self._starting, self._stopping, self._reopening)
        return [f for f in running if f is not None and not f.done()]

    @property
    def state(self) -> str:
        """For status: see control.proto's Status.stream."""
        if not self.healthy:
            return "failed"
        if self._starting is not None:
            return "starting"
        if self._suspended:
            return "stopping" if self.transitions() else "idle"
        return "running"

    async def prepare(self) -> None:
        """Before an utterance: wait for a lost device (OutputError with the reason after
        device_wait_s), and reopen a stream whose callback failed. One closed for
        idleness is left for wake()."""
        self.notice()
        await self.device_state.wait()
        async with self._transition:
            if self.callback_failed and not self._suspended and self._starting is None:
                self.ensure_open()

    async def wake(self) -> None:
        """Open a stream closed for idleness, in the background: its start-up (a few ms
        through ALSA's pulse plugin) ends long before a synthesis call's first audio, and
        frames queue in the ring meanwhile."""
        async with self._transition:
            if self._suspended:
                self._suspended = False
                self._thread_since = time.monotonic()
                self._starting = asyncio.create_task(self._start_again())

    async def _start_again(self) -> None:
        try:
            self._stream = await asyncio.to_thread(self._new_stream)
        except OutputError as err:
            # The watcher reopens it once the device is back; the audio waits in the ring.
            self.device_state.lose(str(err))
        finally:
            self._starting = None

    @property
    def latency_ms(self) -> int:
        """The open stream's latency as granted; 0 while none is open."""
        stream = self._stream
        if stream is None or self._suspended or self.transitions():
            return 0
        return round(stream.latency * 1000)

    def _quiet(self) -> bool:
        drain = self._drain
        return (
            self.running
            and not self.device_state.lost  # the watcher judges a reopened stream first
            and self._starting is None
            and not drain.expecting
            and drain.ring.available() == 0
        )

    async def aclose(self) -> None:
        """Close, after any start in progress has finished (it runs in a thread)."""
        if transitions := self.transitions():
            await asyncio.wait(transitions)
        self.close()

    def ensure_open(self) -> None:
        """Reopen the stream if the device went away or the callback failed."""
        if self.healthy:
            return
        if self._stream is not None:
            _LOGGER.warning("audio output stopped (the callback failed); reopening")
        self._drain.reset()  # the stream is not running, so nothing else reads the ring
        self.open(retry=False)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            close_quietly(stream)
