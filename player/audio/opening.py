"""Opening and starting a PortAudio stream, and setting aside one whose start timed out.

PortAudio's ALSA backend gives a new stream's thread one second to start the device.
A sink that wakes more slowly (HDMI, USB and Bluetooth resuming from suspend, a sound
server under load) fails the start with "Wait timed out", and leaves the stream broken:
its thread was cancelled inside the sound server's client library, and stopping or
closing the stream afterwards cancels a stale thread id, which may be any thread of the
process, the caller's included. Such a stream is therefore *set aside*: its callbacks are
disarmed, it is kept referenced for the life of the process and never touched again, and
nothing may terminate PortAudio (that closes every stream) while one exists. By the time
the start fails, the sink is awake, so a new stream then starts at once.

What such a stream's thread read from the ring while it primed the device was never
heard: the ring's read position is put back. At most `MOST_SET_ASIDE` streams are set
aside (each holds a sound-server client): past that, opening fails for good, and the
daemon says a restart is needed (its systemd watchdog goes quiet to have one done).
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from player.audio.ring import RingBuffer
from player.errors import OutputError

_LOGGER = logging.getLogger(__name__)

START_TIMED_OUT = -9987
"""PortAudio's paTimedOut: the stream's thread did not start the device within 1 s."""
RETRY_PAUSE_S = 0.1
"""Seconds between a start that timed out and the next: PortAudio's own wait makes
them a second apart; this only keeps a start that fails at once from spinning."""
MOST_SET_ASIDE = 8
"""Streams set aside before opening gives up: a sound server allows a few dozen clients,
and a sink this slow time after time needs a look, not more streams."""
FINISH_WAIT_S = 0.25
"""Seconds to wait for a set-aside stream's thread to finish its last callbacks before
another stream's start: two callbacks must never read the ring at once."""


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
Callback = Callable[[Any, int, Any, Any], None]


def sounddevice_stream(**kwargs: Any) -> Stream:
    import sounddevice

    stream: Stream = sounddevice.OutputStream(**kwargs)
    return stream


class Arm:
    """Whether one stream's callbacks may act: disarmed when the stream is set aside, so a
    late callback from its thread neither reads the ring nor marks the current stream
    ended. Written by the opener, read on PortAudio's thread (a plain attribute)."""

    def __init__(self) -> None:
        self.armed = True
        self.finished = threading.Event()
        """Set by PortAudio when the stream's thread is done."""


class SetAside:
    """Streams whose start timed out, kept referenced for good (see the module's doc).

    `PORTAUDIO` is the process's own; tests of fake streams make their own."""

    def __init__(self, first: Callable[[], None] = lambda: None) -> None:
        self._streams: list[tuple[Stream, Arm]] = []
        self._first = first

    def __len__(self) -> int:
        """Streams set aside: while there are any, PortAudio must not be terminated."""
        return len(self._streams)

    @property
    def full(self) -> bool:
        """No more may be set aside: the device cannot be opened until a restart."""
        return len(self._streams) >= MOST_SET_ASIDE

    def add(self, stream: Stream, arm: Arm) -> None:
        arm.armed = False
        self._streams.append((stream, arm))
        if len(self._streams) == 1:
            self._first()
        # Its thread may still be in a callback; the next stream must not read beside it.
        arm.finished.wait(FINISH_WAIT_S)


def _keep_portaudio_at_exit() -> None:
    # sounddevice terminates PortAudio at exit, which would close the streams set aside
    # (see the module's doc); the process's exit frees all of it anyway.
    import sounddevice

    atexit.unregister(sounddevice._exit_handler)  # noqa: SLF001


PORTAUDIO = SetAside(_keep_portaudio_at_exit)
"""The streams of this process's PortAudio set aside."""


def _timed_out(err: Exception) -> bool:
    return START_TIMED_OUT in getattr(err, "args", ()) or "Wait timed out" in str(err)


def open_stream(
    factory: StreamFactory,
    set_aside: SetAside,
    ring: RingBuffer,
    name: str,
    start_s: float,
    callback: Callable[[Arm, Any, int, Any, Any], None],
    finished: Callable[[Arm], None],
    **kwargs: Any,
) -> tuple[Stream, Arm]:
    """Open and start a stream on device ``name`` (any thread, blocking; no other reader of
    ``ring`` runs meanwhile). A start that times out is put in ``set_aside`` and tried
    again on a new stream, until ``start_s`` seconds have passed (0: one attempt).
    ``callback`` and ``finished`` get the stream's `Arm` first. Raises OutputError."""
    deadline = time.monotonic() + start_s
    while True:
        if set_aside.full:
            raise OutputError(
                f"audio device {name!r} failed to start {len(set_aside)} times (PortAudio "
                "gave up waiting for it); restart the daemon to use it again"
            )
        arm = Arm()

        def done(arm: Arm = arm) -> None:
            arm.finished.set()
            finished(arm)

        try:
            stream = factory(
                callback=functools.partial(callback, arm), finished_callback=done, **kwargs
            )
        except Exception as err:
            raise OutputError(f"cannot open audio device {name!r}: {err}") from err
        read_from = ring.read_pos
        try:
            stream.start()
        except Exception as err:
            if not _timed_out(err):
                arm.armed = False
                close_quietly(stream)
                raise OutputError(f"cannot start audio device {name!r}: {err}") from err
            set_aside.add(stream, arm)
            ring.rewind_to(read_from)  # what it primed the device with was never heard
            if time.monotonic() >= deadline:
                raise OutputError(
                    f"audio device {name!r} did not start within {start_s:g} s: {err}"
                ) from err
            _LOGGER.info("audio device %r was slow to start (%s); starting it again", name, err)
            time.sleep(RETRY_PAUSE_S)
            continue
        return stream, arm


def close_quietly(stream: Stream) -> None:
    """Stop and close; a stream whose device went away may refuse both."""
    try:
        stream.stop()
        stream.close()
    except Exception as err:
        _LOGGER.warning("closing the audio stream failed: %s", err)
