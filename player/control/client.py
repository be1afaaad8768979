"""`player.Client`: talking to a running daemon over its control socket.

The CLI uses it too. Kept free of numpy and sounddevice so a `say` starts fast.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc

from player.errors import ClientError
from player.generated.speechkit_player.control.v1 import control_pb2, control_pb2_grpc

_Reply = TypeVar("_Reply")

# Short requests (status, stop, devices) answer at once from a live daemon.
CALL_TIMEOUT = 5.0


def default_socket() -> Path:
    """The socket the daemon listens on with the user's default config."""
    from player.config import default_config, load_settings

    return load_settings(default_config(os.environ), os.environ).control.socket


class Client:
    """A connection to the daemon's control socket (asyncio; see `SyncClient` for a
    blocking one). Use it with `async with`.

    ``socket_path`` defaults to the one in ~/.config/speechkit-player/player.toml, or
    $XDG_RUNTIME_DIR/speechkit-player.sock.
    """

    def __init__(self, socket_path: Path | str | None = None) -> None:
        socket_path = Path(socket_path) if socket_path is not None else default_socket()
        self.socket_path = socket_path
        self._channel = grpc.aio.insecure_channel(f"unix:{socket_path}")
        self._stub = control_pb2_grpc.PlayerStub(self._channel)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    def _unreachable(self) -> ClientError:
        return ClientError(
            f"cannot reach the daemon at {self.socket_path}: "
            "is `speechkit-player daemon` running with the same config?"
        )

    def _translate(self, err: grpc.aio.AioRpcError) -> ClientError:
        # The daemon never answers UNAVAILABLE itself (see control/server.py), so this code
        # always means the socket did not answer.
        if err.code() is grpc.StatusCode.UNAVAILABLE:
            return self._unreachable()
        return ClientError(err.details() or err.code().name, err.code())

    def _check_socket(self) -> None:
        if not self.socket_path.exists():
            raise self._unreachable()

    async def say(
        self,
        text: str | AsyncIterable[str],
        *,
        wait: bool = False,
        priority: str = "message",
    ) -> control_pb2.SayReply:
        """Speak ``text`` (a string, or pieces as they come) as one utterance; returns
        once it is queued, or with ``wait`` after its last sample played."""
        if isinstance(text, str):
            # The whole text in one message, marked so: the daemon may play it from its
            # phrase cache instead of waiting to learn whether more follows.
            self._check_socket()
            whole = Speech(self, self._stub, self._translate, wait, priority, whole=text)
            return await whole.close()
        async with self.speech(wait=wait, priority=priority) as speech:
            await speech.feed_from(text)
        assert speech.reply is not None
        return speech.reply

    def speech(self, *, wait: bool = False, priority: str = "message") -> Speech:
        """One utterance whose text is fed piece by piece (LLM tokens, say):

            async with client.speech() as speech:
                async for token in tokens:
                    await speech.feed(token)

        Leaving the block ends the text; with ``wait`` it returns after the last sample.
        A `feed` after the daemon ended the utterance (`stop`, `cancel`, a failure)
        raises ClientError with the reason, so the producer can stop too.
        """
        self._check_socket()
        return Speech(self, self._stub, self._translate, wait, priority)

    async def cancel(self, utterance_id: str) -> bool:
        """Drop one utterance; False if it had already finished (or never existed)."""
        reply = await self._unary(
            self._stub.Cancel, control_pb2.CancelRequest(utterance_id=utterance_id)
        )
        return reply.cancelled

    async def pause(self) -> None:
        await self._unary(self._stub.Pause, control_pb2.PauseRequest())

    async def resume(self) -> None:
        await self._unary(self._stub.Resume, control_pb2.PauseRequest())

    async def _unary(self, method: Callable[..., Awaitable[_Reply]], request: object) -> _Reply:
        self._check_socket()
        try:
            return await method(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise self._translate(err) from None

    async def stop(self) -> control_pb2.StopReply:
        return await self._unary(self._stub.Stop, control_pb2.StopRequest())

    async def status(self) -> control_pb2.Status:
        return await self._unary(self._stub.GetStatus, control_pb2.StatusRequest())

    async def subscribe(self) -> EventStream:
        """Start listening to what happens to utterances; returns once the daemon is
        listening, so nothing that happens afterwards is missed."""
        self._check_socket()
        call = self._stub.Events(control_pb2.EventsRequest())
        try:
            await asyncio.wait_for(call.initial_metadata(), CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise self._translate(err) from None
        except TimeoutError:
            call.cancel()
            raise ClientError(f"the daemon at {self.socket_path} did not answer") from None
        return EventStream(call, self._translate)

    async def devices(self) -> control_pb2.ListDevicesReply:
        return await self._unary(self._stub.ListDevices, control_pb2.ListDevicesRequest())

    async def warm_cache(self, texts: list[str]) -> AsyncIterator[control_pb2.WarmCacheReply]:
        """Each text synthesised into the daemon's phrase cache (unplayed), one answer per
        text as it is done. No overall deadline: a long list takes as long as it takes."""
        self._check_socket()
        call = self._stub.WarmCache(control_pb2.WarmCacheRequest(texts=texts))
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as err:
            raise self._translate(err) from None
        finally:
            call.cancel()

    async def list_cache(self) -> control_pb2.ListCacheReply:
        return await self._unary(self._stub.ListCache, control_pb2.ListCacheRequest())

    async def clear_cache(self) -> control_pb2.ClearCacheReply:
        return await self._unary(self._stub.ClearCache, control_pb2.ClearCacheRequest())


class EventStream:
    """Events as they happen, for `async for`; `close()` stops listening."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[control_pb2.EventsRequest, control_pb2.Event],
        translate: Callable[[grpc.aio.AioRpcError], ClientError],
    ) -> None:
        self._call = call
        self._translate = translate

    async def __aiter__(self) -> AsyncIterator[control_pb2.Event]:
        try:
            async for event in self._call:
                yield event
        except grpc.aio.AioRpcError as err:
            if err.code() is not grpc.StatusCode.CANCELLED:
                raise self._translate(err) from None

    def close(self) -> None:
        self._call.cancel()


class Speech:
    """One utterance being streamed to the daemon; see `Client.speech`."""

    def __init__(
        self,
        client: Client,
        stub: control_pb2_grpc.PlayerAsyncStub,  # what PlayerStub makes on an aio channel
        translate: Callable[[grpc.aio.AioRpcError], ClientError],
        wait: bool,
        priority: str,
        whole: str | None = None,
    ) -> None:
        self._client = client
        self._translate = translate
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._call = stub.Say(self._requests(wait, priority, whole))
        self._ended = asyncio.Event()
        self._call.add_done_callback(self._on_done)
        self._id: str | None = None
        self.reply: control_pb2.SayReply | None = None
        """The daemon's answer, once the block is left."""

    def _on_done(self, _call: object) -> None:
        self._ended.set()
        # Ends the request generator: grpc's task reading it is not cancelled when the
        # daemon ends the call, and would be left waiting for text that never comes.
        self._pieces.put_nowait(None)

    async def _requests(
        self, wait: bool, priority: str, whole: str | None
    ) -> AsyncIterator[control_pb2.SayRequest]:
        if whole is not None:
            yield control_pb2.SayRequest(wait=wait, priority=priority, text=whole, complete=True)
            return
        yield control_pb2.SayRequest(wait=wait, priority=priority)
        while (piece := await self._pieces.get()) is not None:
            yield control_pb2.SayRequest(text=piece)

    async def __aenter__(self) -> Speech:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            # Nothing of a broken input is spoken.
            self._call.cancel()
            return
        await self.close()

    async def feed(self, text: str) -> None:
        """Send a piece of text (any size; a token is fine)."""
        if self._call.done():
            await self._result()  # raises the reason it ended
            raise ClientError("the utterance has already ended")
        self._pieces.put_nowait(text)

    async def feed_from(self, pieces: AsyncIterable[str]) -> None:
        """Feed every piece of ``pieces``; returns early (raising ClientError with the
        reason) if the daemon ends the utterance while the next piece is awaited."""

        async def pump() -> None:
            async for piece in pieces:
                await self.feed(piece)

        pumping = asyncio.create_task(pump())
        ended = asyncio.create_task(self._ended.wait())
        try:
            await asyncio.wait([pumping, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not pumping.done():
                pumping.cancel()
                await asyncio.wait([pumping])
        if not pumping.cancelled():
            pumping.result()  # the input's own error, if any
        if self._call.done():
            await self._result()

    async def close(self) -> control_pb2.SayReply:
        """End the text; returns the daemon's reply (after playing, with ``wait``)."""
        self._pieces.put_nowait(None)
        self.reply = await self._result()
        self._id = self._id or self.reply.utterance_id
        return self.reply

    async def id(self) -> str:
        """The utterance's id, as soon as the daemon has queued it (after the first
        piece of text)."""
        if self._id is None:
            try:
                metadata = await self._call.initial_metadata()
            except grpc.aio.AioRpcError as err:
                raise self._translate(err) from None
            found = dict(metadata or ()).get("utterance-id")
            if found is None:
                raise ClientError("the daemon sent no utterance id")
            self._id = str(found)
        return self._id

    async def cancel(self) -> bool:
        """Drop it, wherever it is (queued, being spoken)."""
        return await self._client.cancel(await self.id())

    async def _result(self) -> control_pb2.SayReply:
        try:
            reply: control_pb2.SayReply = await self._call
        except grpc.aio.AioRpcError as err:
            raise self._translate(err) from None
        return reply
