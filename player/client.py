"""Talking to a running daemon over its control socket (used by the CLI).

Kept free of numpy and sounddevice so a `say` starts fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc

from player.generated.speechkit_player.control.v1 import control_pb2, control_pb2_grpc

_Reply = TypeVar("_Reply")

# Short requests (status, stop, devices) answer at once from a live daemon.
CALL_TIMEOUT = 5.0


class ClientError(Exception):
    """One line for the person at the terminal."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class Client:
    """A connection to the daemon's control socket."""

    def __init__(self, socket_path: Path) -> None:
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
        # The daemon never answers UNAVAILABLE itself (see control.py), so this code
        # always means the socket did not answer.
        if err.code() is grpc.StatusCode.UNAVAILABLE:
            return self._unreachable()
        return ClientError(err.details() or err.code().name, err.code())

    def _check_socket(self) -> None:
        if not self.socket_path.exists():
            raise self._unreachable()

    async def say(self, pieces: AsyncIterator[str], wait: bool) -> control_pb2.SayReply:
        """Stream ``pieces`` as one utterance; with ``wait``, return after it played."""
        self._check_socket()
        input_error: list[Exception] = []

        async def requests() -> AsyncIterator[control_pb2.SayRequest]:
            yield control_pb2.SayRequest(wait=wait)
            try:
                async for piece in pieces:
                    yield control_pb2.SayRequest(text=piece)
            except Exception as err:
                # grpc would turn this into a bare cancellation; keep the reason, and
                # cancel so that nothing of a broken input is spoken.
                input_error.append(err)
                call.cancel()

        call = self._stub.Say(requests())
        try:
            reply: control_pb2.SayReply = await call
        except grpc.aio.AioRpcError as err:
            raise self._translate(err) from None
        except asyncio.CancelledError:
            if input_error:
                raise input_error[0] from None
            raise
        return reply

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
