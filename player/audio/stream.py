"""The output stream's lifetime: open, stop when idle, wake, reopen; and its callback.

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
from player.audio.ring import Frames
from player.audio.telemetry import Telemetry
from player.config import AudioSettings
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)


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
    """One PortAudio output stream for the daemon's whole life, reopened if it dies.

    After `idle_stop_ms` of silence it is stopped, not closed (a running stream wakes the
    CPU every block even when silent), and started again in a worker thread when speech
    comes; one lock orders the two.
    """

    def __init__(
        self,
        settings: AudioSettings,
        device: DeviceInfo,
        drain: Drain,
        telemetry: Telemetry,
        factory: StreamFactory = sounddevice_stream,
    ) -> None:
        self.device = device
        self._settings = settings
        self._drain = drain
        self._telemetry = telemetry
        self._factory = factory
        self._stream: Stream | None = None
        self._suspended = False
        self._starting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._transition = asyncio.Lock()
        self.callback_failed = False  # callback
        self.last_callback = 0.0  # callback: time.monotonic() of the last call
        self.device_underruns = 0  # callback: blocks PortAudio reported as underflowed

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

    # -- lifetime (asyncio side) ---------------------------------------------------

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
        return self._stream.active or self._suspended or bool(self.transitions())

    def transitions(self) -> list[asyncio.Future[None]]:
        """Starts and stops still running in their threads."""
        return [f for f in (self._starting, self._stopping) if f is not None and not f.done()]

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
        """For the daemon's life: stop the stream after idle_stop_ms without speech."""
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
            if busy() or not self._quiet() or self._stream is None:
                return
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
                return
            _LOGGER.debug("audio stream stopped after %.1f s of silence", limit)

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
            _LOGGER.warning("audio output stopped (device gone or callback failed); reopening")
        self._drain.reset()  # the stream is not running, so nothing else reads the ring
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
