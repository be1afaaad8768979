"""What looks after the output stream for the daemon's life, from the event loop: the
watcher that notices a lost device and reopens it (backing off, judging each new stream
by `recovery.Limits`), the output latency moved at a silence (`latency`), and the stream
closed after `idle_stop_ms` of silence. `OutputStream` owns the stream and its state;
these loops are its methods, kept apart by concern.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from player.audio.opening import SetAside, Stream, close_quietly
from player.errors import OutputError

if TYPE_CHECKING:
    from player.audio.devices import DeviceInfo
    from player.audio.drain import Drain
    from player.audio.latency import OutputLatency
    from player.audio.recovery import DeviceState, Limits
    from player.config import AudioSettings

_LOGGER = logging.getLogger(__name__)


class Upkeep:
    """The loops `OutputStream` runs for the daemon's life; see the module's doc."""

    # OutputStream's state and methods these loops use (see there).
    device: DeviceInfo
    device_state: DeviceState
    latency: OutputLatency
    device_underruns: int
    _settings: AudioSettings
    _limits: Limits
    _drain: Drain
    _stream: Stream | None
    _suspended: bool
    _transition: asyncio.Lock
    _thread_since: float
    _reopening: asyncio.Future[Stream] | None
    _stopping: asyncio.Future[None] | None
    _set_aside: SetAside
    _reinit: Callable[[], None]
    _device_key: str | int | None

    if TYPE_CHECKING:

        def transitions(self) -> list[asyncio.Future[Any]]: ...
        def lost_reason(self) -> str | None: ...
        def has_run(self) -> bool: ...
        def _new_stream(self, retry: bool = True) -> Stream: ...
        def _quiet(self) -> bool: ...
        async def wake(self) -> None: ...

    async def watch(self) -> None:
        """For the daemon's life: notice the device going away, and reopen it once it is
        back (polling with backoff); move the output latency at a silence."""
        while True:
            await asyncio.sleep(self._limits.check_s)
            await self._adapt_latency()
            if not self.device_state.lost:
                reason = self.lost_reason()
                if reason is None:
                    continue
                self.device_state.lose(reason)
            await self._recover()

    async def _recover(self) -> None:
        """Reopen the lost device until a new stream calls back, backing off between
        attempts; a stream reopened gets the same start-up bound as any other."""
        state = self.device_state
        while True:
            if delay := state.next_attempt():
                await asyncio.sleep(delay)
            if await self._reopen() and await self._runs():
                state.regain()
                return

    async def _runs(self) -> bool:
        """After a reopening: True once the new stream calls back, False once it counts as
        lost (by `Limits.start_s` at the latest)."""
        while True:
            if self.has_run():
                return True
            if (reason := self.lost_reason()) is not None:
                _LOGGER.debug("the reopened audio stream did not play: %s", reason)
                return False
            await asyncio.sleep(self._limits.check_s)

    async def _reopen(self) -> bool:
        """One attempt at reopening the lost device; True once a new stream is open."""
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
            return True

    def _fresh_stream(self, old: Stream | None) -> Stream:
        """In a worker thread: close the dead stream, have PortAudio look for devices
        again (it must have no stream open for that), and open a new one."""
        if old is not None:
            close_quietly(old)
        if len(self._set_aside):
            # Terminating PortAudio would close the streams set aside, which must never
            # be touched again (see player.audio.opening): the device is asked for by its
            # name among the devices PortAudio listed before.
            _LOGGER.debug("PortAudio not re-initialised: a stream that failed to start is open")
        else:
            try:
                self._reinit()
            except Exception as err:
                raise OutputError(f"PortAudio could not be re-initialised: {err}") from err
        if isinstance(self._device_key, int):
            self._device_key = self.device.name
        return self._new_stream(retry=False)

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
            await self._close_for_now(stream)
            _LOGGER.debug("audio stream closed after %.1f s of silence", limit)

    async def _close_for_now(self, stream: Stream) -> None:
        """Close the stream until `wake` opens it again; under the transition lock."""
        # Set first, so the stream is never neither running nor suspended.
        self._suspended = True
        # Shielded: a cancelled wait must not let aclose() run beside the thread.
        self._thread_since = time.monotonic()
        self._stopping = asyncio.ensure_future(asyncio.to_thread(close_quietly, stream))
        try:
            await asyncio.shield(self._stopping)
        finally:
            self._stream = None

    async def _adapt_latency(self) -> None:
        """Reopen the stream at the latency `self.latency` wants, once nothing plays."""
        now, latency = time.monotonic(), self.latency
        latency.observe(self.device_underruns, now)
        step = latency.wanted(now)
        if step is None or not self._quiet():
            return
        async with self._transition:
            stream = self._stream
            if not self._quiet() or stream is None:
                return
            before, raised = round(stream.latency * 1000), step > latency.step
            latency.change(step, now)
            await self._close_for_now(stream)
        await self.wake()
        if raised:
            _LOGGER.warning(
                "the sound device kept running dry (%d times in %g s): output latency "
                "raised from %d to %.0f ms",
                latency.policy.raise_after,
                latency.policy.window_s,
                before,
                latency.seconds(step) * 1000,
            )
        else:
            _LOGGER.info(
                "output latency lowered from %d ms after %g s without the device running dry",
                before,
                latency.policy.quiet_s,
            )
