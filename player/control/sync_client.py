"""`player.SyncClient`: the asyncio `Client` for code without an event loop.

It runs its own event loop on a background thread; every method blocks until done.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from player.control.client import Client, EventStream, Speech
from player.generated.speechkit_player.control.v1 import control_pb2

_T = TypeVar("_T")


class _LoopThread:
    """An event loop on a background thread; `run` blocks until a coroutine is done."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="speechkit-player-client", daemon=True
        )
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def call_soon(self, callback: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(callback)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class SyncClient:
    """Blocking twin of `Client`; use it with `with`, or call `close()`."""

    def __init__(self, socket_path: Path | str | None = None) -> None:
        self._runner = _LoopThread()
        self._run = self._runner.run
        self._client = self._run(self._connect(socket_path))

    @staticmethod
    async def _connect(socket_path: Path | str | None) -> Client:
        # grpc.aio binds a channel to the loop it was made in.
        return Client(socket_path)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._runner.closed:
            return
        self._run(self._client.__aexit__(None, None, None))
        self._runner.close()

    def say(self, text: str, *, wait: bool = False, priority: str = "message") -> str:
        """Speak ``text``; returns the utterance's id (with ``wait``, after it played)."""
        return self._run(self._client.say(text, wait=wait, priority=priority)).utterance_id

    def speech(self, *, wait: bool = False, priority: str = "message") -> SyncSpeech:
        """One utterance fed piece by piece; see `Client.speech`."""

        async def start() -> Speech:
            return self._client.speech(wait=wait, priority=priority)

        return SyncSpeech(self._runner, self._run(start()))

    def stop(self) -> int:
        """Silence everything; returns how many utterances were dropped."""
        return self._run(self._client.stop()).cancelled

    def cancel(self, utterance_id: str) -> bool:
        return self._run(self._client.cancel(utterance_id))

    def pause(self) -> None:
        self._run(self._client.pause())

    def resume(self) -> None:
        self._run(self._client.resume())

    def status(self) -> control_pb2.Status:
        return self._run(self._client.status())

    def events(self) -> SyncEvents:
        """Events from now on, as a blocking iterator; `close()` it when done."""
        return SyncEvents(self._runner, self._run(self._client.subscribe()))


class SyncSpeech:
    def __init__(self, runner: _LoopThread, speech: Speech) -> None:
        self._run = runner.run
        self._speech = speech

    def __enter__(self) -> SyncSpeech:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._run(self._speech.__aexit__(exc_type, exc, tb))

    def feed(self, text: str) -> None:
        self._run(self._speech.feed(text))

    def close(self) -> control_pb2.SayReply:
        return self._run(self._speech.close())

    def id(self) -> str:
        return self._run(self._speech.id())

    def cancel(self) -> bool:
        return self._run(self._speech.cancel())


class SyncEvents:
    def __init__(self, runner: _LoopThread, stream: EventStream) -> None:
        self._runner = runner
        self._stream = stream
        self._events = stream.__aiter__()

    def __iter__(self) -> Iterator[control_pb2.Event]:
        return self

    def __next__(self) -> control_pb2.Event:
        try:
            return self._runner.run(self._next())
        except StopAsyncIteration:
            raise StopIteration from None

    async def _next(self) -> control_pb2.Event:
        return await anext(self._events)

    def close(self) -> None:
        self._runner.call_soon(self._stream.close)
