"""The output stream: a sounddevice callback that drains the ring buffer.

The callback runs on PortAudio's thread. It copies frames, fills the rest with zeros and
bumps integer counters; it never blocks, logs, allocates an array or lets an exception
out (sounddevice would silently stop the stream and the speaker would go dead). The
asyncio side talks to it only through the ring and a few plain attributes, and polls
them: waiting on the callback would mean the callback signalling, which can block.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from player.config import AudioSettings
from player.ring import Frames, RingBuffer
from player.telemetry import Telemetry

_LOGGER = logging.getLogger(__name__)


MAX_NAP = 0.1
"""Seconds: the longest the producer sleeps before looking at the ring again."""


class OutputError(Exception):
    """The audio device could not be opened or stopped consuming audio."""


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


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    """The device as PortAudio names it."""
    samplerate: int
    """Hertz; the rate the stream is open at and audio is requested at."""
    channels: int
    """Output channels; mono speech is copied to each."""
    block_frames: int
    """Frames per callback."""


def _sounddevice_stream(**kwargs: Any) -> Stream:
    import sounddevice

    stream: Stream = sounddevice.OutputStream(**kwargs)
    return stream


def resolve_device(settings: AudioSettings) -> DeviceInfo:
    """Ask PortAudio about the configured device; raises OutputError in plain words."""
    import sounddevice

    try:
        info = sounddevice.query_devices(settings.device, kind="output")
    except (ValueError, sounddevice.PortAudioError) as err:
        wanted = "the default output device" if settings.device is None else settings.device
        raise OutputError(f"audio device {wanted!r} is not available: {err}") from err
    max_channels = int(info["max_output_channels"])
    if max_channels < 1:
        raise OutputError(f"audio device {info['name']!r} has no output channels")
    channels = settings.channels or min(2, max_channels)
    if channels > max_channels:
        raise OutputError(
            f"audio device {info['name']!r} has {max_channels} output channels, "
            f"{channels} configured"
        )
    rate = settings.samplerate or round(info["default_samplerate"])
    # The service accepts 8-48 kHz; a device default outside that is clamped to 48 kHz
    # and PortAudio (or the sound server) converts.
    if not 8000 <= rate <= 48000:
        rate = 48000
    block = max(1, round(rate * settings.block_ms / 1000))
    return DeviceInfo(str(info["name"]), rate, channels, block)


def output_devices() -> list[dict[str, Any]]:
    """Output devices as PortAudio sees them, in the fields of control.proto's Device."""
    import sounddevice

    default = sounddevice.default.device[1]
    hostapis = sounddevice.query_hostapis()
    return [
        {
            "index": int(info["index"]),
            "name": str(info["name"]),
            "hostapi": str(hostapis[info["hostapi"]]["name"]),
            "max_output_channels": int(info["max_output_channels"]),
            "default_samplerate": float(info["default_samplerate"]),
            "is_default": info["index"] == default,
        }
        for info in sounddevice.query_devices()
        if info["max_output_channels"] > 0
    ]


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
        fade = max(1, round(rate * settings.fade_ms / 1000))
        self._fade = np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, np.newaxis]
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
        # Shared with the callback. Plain ints and bools: single writes are atomic under
        # the GIL, and each has one writer (noted per field).
        self.gate_open = False  # asyncio: start playing (prebuffer reached)
        self.expecting = False  # asyncio: an utterance is still producing audio
        self.end_mark = 0  # asyncio: ring position where queued speech ends
        self._flush_requested = 0  # asyncio: bump to fade out and drop the ring
        self._flush_done = 0  # callback: acknowledges a flush
        self.underruns = 0  # callback: times speech ran dry mid-utterance
        self._starving = False  # callback
        self.frames_played = 0  # callback: frames of speech handed to the device
        self.flushed_at = 0  # callback (or asyncio, stream not running): where a flush cut
        self.callback_failed = False  # callback
        self.last_callback = 0.0  # callback: time.monotonic() of the last call
        self.telemetry = Telemetry()  # callback rows and producer rows, see its module

    # -- the callback (PortAudio thread) ---------------------------------------------

    def _callback(self, outdata: Frames, frames: int, _time: Any, _status: Any) -> None:
        started = time.perf_counter_ns()
        try:
            self.last_callback = time.monotonic()
            read_from = self.ring.read_pos
            read = self._fill(outdata, frames)
            self.telemetry.callback(started, time.perf_counter_ns(), read_from, read)
        except BaseException:
            self.callback_failed = True
            # Nothing may escape into PortAudio, not even from the zero-fill.
            with contextlib.suppress(BaseException):
                outdata.fill(0.0)

    def _fill(self, outdata: Frames, frames: int) -> int:
        """Returns the frames of speech it put in ``outdata``."""
        ring = self.ring
        if self._flush_requested != self._flush_done:
            n = ring.read_into(outdata, frames) if self.gate_open else 0
            k = min(n, len(self._fade))
            outdata[:k] *= self._fade[:k]
            outdata[k:] = 0.0
            self.frames_played += k
            self.flushed_at = ring.read_pos - n + k  # the faded frames were the last heard
            ring.discard()
            self.gate_open = False
            self._flush_done = self._flush_requested
            return k
        if not self.gate_open:
            outdata.fill(0.0)
            return 0
        n = ring.read_into(outdata, frames)
        self.frames_played += n
        if n == frames:
            self._starving = False
            return n
        outdata[n:] = 0.0
        # A dry spell counts once, however many blocks it lasts.
        if (self.expecting or ring.read_pos < self.end_mark) and not self._starving:
            self.underruns += 1
            self._starving = True
        return n

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
            and not self.expecting
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
        self.gate_open = False
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
            self.gate_open = False
        self._cancel_gate_timer()
        self.expecting = True

    def end_utterance(self) -> int:
        """After the last frame: returns the ring position where this utterance ends."""
        self.end_mark = self.ring.write_pos
        self.expecting = False
        self.gate_open = True
        self._cancel_gate_timer()
        return self.end_mark

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
        if self.gate_open:
            return
        if self.ring.available() >= self.prebuffer_frames:
            self.gate_open = True
            self._cancel_gate_timer()
        elif self._gate_timer is None:
            wait = self.prebuffer_frames / self.device.samplerate
            self._gate_timer = asyncio.get_running_loop().call_later(wait, self._gate_timeout)

    def _gate_timeout(self) -> None:
        self._gate_timer = None
        if self.ring.available():
            self.gate_open = True

    def _cancel_gate_timer(self) -> None:
        if self._gate_timer is not None:
            self._gate_timer.cancel()
            self._gate_timer = None

    async def flush(self, wait_limit: float) -> bool:
        """Fade out what is playing and drop everything queued. True once the callback
        did it; False if it did not answer in time."""
        if transitions := self._transitions():
            await asyncio.wait(transitions, timeout=wait_limit)
        if not self.running:
            # No callback is running, so this side may drop the ring itself.
            self.flushed_at = self.ring.read_pos
            self.ring.discard()
            self.gate_open = False
            return True
        self._flush_requested += 1
        target = self._flush_requested
        period = self.device.block_frames / self.device.samplerate
        deadline = time.monotonic() + wait_limit
        while self._flush_done != target:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(period / 2)
        return True

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
            elif now - since >= stall_timeout or not self.healthy:
                raise OutputError("the audio device stopped taking audio")


def _short_of(ring: RingBuffer, want: int) -> int:
    """Frames of room still missing before ``want`` frames fit."""
    return want - ring.free()
