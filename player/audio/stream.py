"""The output stream's lifetime: open, close when idle, wake, reopen a lost device; and
its callback.

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
from typing import Any, Protocol

from player.audio.devices import DeviceInfo
from player.audio.drain import Drain
from player.audio.recovery import DeviceState, backoff, reinitialise_portaudio
from player.audio.ring import Frames
from player.audio.telemetry import Telemetry
from player.config import AudioSettings
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

CHECK_INTERVAL = 0.25
"""Seconds between the watcher's looks at the stream."""
SILENT_LIMIT = 1.0
"""Seconds a running stream may go without a callback before the device counts as lost
(a sound server that hangs instead of dying leaves the stream "active" but silent)."""


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


def sounddevice_stream(**kwargs: Any) -> Stream:
    import sounddevice

    stream: Stream = sounddevice.OutputStream(**kwargs)
    return stream


class OutputStream:
    """The daemon's PortAudio output stream, reopened when its device comes back.

    After `idle_stop_ms` of silence it is closed (a running stream wakes the CPU every
    block even when silent) and opened again in a worker thread when speech comes; one
    lock orders the two. Closed rather than stopped: starting a stopped stream whose sound
    server died meanwhile blocks for good inside ALSA's pulse plugin, while opening a new
    one fails at once (and costs a few ms more).

    `watch` notices the device going away (the stream ending by itself, or no callback
    for SILENT_LIMIT) and reopens it with backoff, re-initialising PortAudio each time so
    that a device plugged in again is found. The ring is kept meanwhile: once the device
    is back, the callback goes on from the first frame it had not taken.
    """

    def __init__(
        self,
        settings: AudioSettings,
        device: DeviceInfo,
        drain: Drain,
        telemetry: Telemetry,
        factory: StreamFactory = sounddevice_stream,
        reinit: Callable[[], None] = reinitialise_portaudio,
    ) -> None:
        """``reinit`` has PortAudio list the devices again (only called while the
        stream is closed)."""
        self.device = device
        self._settings = settings
        self._drain = drain
        self._telemetry = telemetry
        self._factory = factory
        self._reinit = reinit
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
        self.device_underruns = 0  # callback: blocks PortAudio reported as underflowed
        self._ended = False  # PortAudio thread: the stream finished

    # -- the callback (PortAudio thread) ---------------------------------------------

    def _callback(self, outdata: Frames, frames: int, _time: Any, status: Any) -> None:
        started = time.perf_counter_ns()
        try:
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

    def _finished(self) -> None:
        # Called when the stream ends, whether we stopped it or it died.
        self._ended = True

    # -- lifetime (asyncio side) ---------------------------------------------------

    def _new_stream(self) -> Stream:
        """Open and start a stream (any thread); raises OutputError with the device's name.
        The same rate, channels and block as before, so the ring's audio stays valid."""
        self._ended = False
        try:
            stream = self._factory(
                device=self._device_key,
                samplerate=self.device.samplerate,
                channels=self.device.channels,
                dtype="float32",
                blocksize=self.device.block_frames,
                latency="low",
                callback=self._callback,
                finished_callback=self._finished,
            )
        except Exception as err:
            raise OutputError(f"cannot open audio device {self.device.name!r}: {err}") from err
        try:
            stream.start()
        except Exception as err:
            _close_quietly(stream)
            raise OutputError(f"cannot start audio device {self.device.name!r}: {err}") from err
        self.last_callback = time.monotonic()
        return stream

    def open(self) -> None:
        """Open and start the stream; raises OutputError with the device's name."""
        self.close()
        self.callback_failed = False
        stream = self._new_stream()
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
        silent = time.monotonic() - self.last_callback
        if silent > SILENT_LIMIT:
            return f"the audio device stopped asking for audio ({silent:.1f} s without a call)"
        return None

    def stuck_s(self) -> float:
        """Seconds the audio side has not answered: how long a start, stop or reopening
        has been running in its thread, or else how long a running stream has gone without
        a callback; 0 while it is closed for idleness or between reopening attempts.
        PortAudio calls that never return (a sound server that hangs) show up here even
        after `watch` has given the stream up as lost."""
        now = time.monotonic()
        if self.transitions():
            return now - self._thread_since
        stream = self._stream
        if stream is None or self._suspended or self._ended or not stream.active:
            return 0.0
        return now - self.last_callback

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

    async def watch(self) -> None:
        """For the daemon's life: notice the device going away, and reopen it once it is
        back (polling with backoff)."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if not self.device_state.lost:
                reason = self.lost_reason()
                if reason is None:
                    continue
                self.device_state.lose(reason)
            for delay in backoff():
                if await self._reopen():
                    break
                await asyncio.sleep(delay)

    async def _reopen(self) -> bool:
        """One attempt at reopening the lost device; True once it plays again."""
        async with self._transition:
            if transitions := self.transitions():
                await asyncio.wait(transitions)
            old, self._stream = self._stream, None
            self._suspended = False
            if not self.device_state.worth_waiting:
                # Lost for longer than device_wait_s: what the ring holds belongs to
                # utterances that failed for it, and must not play when the device is back.
                # No callback runs (the stream is dead), so this side may drop it.
                self._drain.reset()
            # Seen by transitions(): nobody moves the ring's read position meanwhile.
            self._thread_since = time.monotonic()
            self._reopening = asyncio.ensure_future(asyncio.to_thread(self._fresh_stream, old))
            try:
                stream = await asyncio.shield(self._reopening)
            except OutputError as err:
                _LOGGER.debug("audio device still away: %s", err)
                return False
            self._stream = stream
            self.device_state.regain()
            return True

    def _fresh_stream(self, old: Stream | None) -> Stream:
        """In a worker thread: close the dead stream, have PortAudio look for devices
        again (it must have no stream open for that), and open a new one."""
        if old is not None:
            _close_quietly(old)
        try:
            self._reinit()
        except Exception as err:
            raise OutputError(f"PortAudio could not be re-initialised: {err}") from err
        if isinstance(self._device_key, int):
            self._device_key = self.device.name
        return self._new_stream()

    async def stop_when_idle(self, busy: Callable[[], bool]) -> None:
        """For the daemon's life: close the stream after idle_stop_ms without speech."""
        limit = self._settings.idle_stop_ms / 1000
        if limit <= 0:
            return
        quiet_since = time.monotonic()
        while True:
            await asyncio.sleep(min(limit, 0.5))
            now = time.monotonic()
            if busy() or not self._quiet():
                quiet_since = now
            elif now - quiet_since >= limit:
                await self._suspend(busy, limit)

    async def _suspend(self, busy: Callable[[], bool], limit: float) -> None:
        async with self._transition:
            stream = self._stream
            if busy() or not self._quiet() or stream is None:
                return
            # Set first, so the stream is never neither running nor suspended.
            self._suspended = True
            # Shielded: a cancelled wait must not let aclose() run beside the thread.
            self._thread_since = time.monotonic()
            self._stopping = asyncio.ensure_future(asyncio.to_thread(_close_quietly, stream))
            try:
                await asyncio.shield(self._stopping)
            finally:
                self._stream = None
            _LOGGER.debug("audio stream closed after %.1f s of silence", limit)

    def _quiet(self) -> bool:
        drain = self._drain
        return (
            self.running
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
        self.open()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_quietly(stream)


def _close_quietly(stream: Stream) -> None:
    """Stop and close; a stream whose device went away may refuse both."""
    try:
        stream.stop()
        stream.close()
    except Exception as err:
        _LOGGER.warning("closing the audio stream failed: %s", err)
