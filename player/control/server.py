"""The control server: our own gRPC service on a local Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from player.audio.output import AudioOutput
from player.config import StreamSettings
from player.errors import ControlError, OutputError, PriorityError, SynthesisError, TextError
from player.generated.speechkit_player.control.v1 import control_pb2, control_pb2_grpc
from player.speech.events import Event
from player.speech.playback import Playback
from player.speech.priority import Priority
from player.speech.utterance import Utterance

_LOGGER = logging.getLogger(__name__)

SOCKET_MODE = 0o660

DeviceLister = Callable[[], list[control_pb2.Device]]


class PlayerService(control_pb2_grpc.PlayerServicer):
    def __init__(
        self,
        playback: Playback,
        output: AudioOutput,
        endpoint: str,
        devices: DeviceLister,
        stream: StreamSettings,
    ) -> None:
        self._stream = stream
        self._playback = playback
        self._output = output
        self._endpoint = endpoint
        self._devices = devices

    async def Say(
        self,
        request_iterator: AsyncIterator[control_pb2.SayRequest],
        context: grpc.aio.ServicerContext[control_pb2.SayRequest, control_pb2.SayReply],
    ) -> control_pb2.SayReply:
        utterance: Utterance | None = None
        wait = False
        priority = Priority.MESSAGE

        async def read_input() -> None:
            nonlocal utterance, wait, priority
            first = True
            async for request in request_iterator:
                if first:
                    wait, first = request.wait, False
                    priority = _priority(request.priority)
                if utterance is None:
                    if not request.text.strip():
                        continue
                    utterance = Utterance(self._stream, priority)
                    utterance.feed(request.text)
                    utterance.done.add_done_callback(abandon_input)
                    # The id goes out first: a caller may want to cancel it at once.
                    await context.send_initial_metadata((("utterance-id", utterance.id),))
                    self._playback.submit(utterance)
                    _LOGGER.debug("%s queued (%s)", utterance.id, priority)
                else:
                    utterance.feed(request.text)

        def abandon_input(done: asyncio.Future[int]) -> None:
            # An utterance that failed while its text was still streaming in: tell the
            # caller now rather than after its producer has finished.
            if not reader.done():
                reader.cancel()

        reader = asyncio.create_task(read_input())
        try:
            try:
                await reader
            except asyncio.CancelledError:
                this = asyncio.current_task()
                if utterance is None or (this is not None and this.cancelling()):
                    raise
            if utterance is None:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "nothing to say: the text is empty"
                )
            utterance.close()
            if not wait and not utterance.done.done():
                return control_pb2.SayReply(utterance_id=utterance.id)
            frames = await utterance.done
        except PriorityError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except TextError as err:
            # One closed for idleness still speaks what it had: only the late text is refused.
            if utterance is not None and not utterance.idle_closed:
                await self._drop(utterance)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except SynthesisError as err:
            await context.abort(_caller_code(err.code), str(err))
        except OutputError as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        except asyncio.CancelledError:
            # The caller went away (Ctrl-C, a broken input) before its answer: what it
            # asked for is no longer wanted.
            reader.cancel()
            await self._drop(utterance)
            raise
        played_ms = frames * 1000 // self._output.device.samplerate
        return control_pb2.SayReply(utterance_id=utterance.id, played_ms=played_ms)

    async def _drop(self, utterance: Utterance | None) -> None:
        if utterance is not None and not utterance.done.done():
            utterance.close()
            await self._playback.cancel(utterance)

    async def Stop(
        self,
        request: control_pb2.StopRequest,
        context: grpc.aio.ServicerContext[control_pb2.StopRequest, control_pb2.StopReply],
    ) -> control_pb2.StopReply:
        cancelled = await self._playback.stop()
        _LOGGER.info("stop: %d utterance(s) cancelled", cancelled)
        return control_pb2.StopReply(cancelled=cancelled)

    async def Cancel(
        self,
        request: control_pb2.CancelRequest,
        context: grpc.aio.ServicerContext[control_pb2.CancelRequest, control_pb2.CancelReply],
    ) -> control_pb2.CancelReply:
        utterance = self._playback.find(request.utterance_id)
        cancelled = utterance is not None and await self._playback.cancel(utterance)
        _LOGGER.info("cancel %s: %s", request.utterance_id, "done" if cancelled else "not found")
        return control_pb2.CancelReply(cancelled=cancelled)

    async def Pause(
        self,
        request: control_pb2.PauseRequest,
        context: grpc.aio.ServicerContext[control_pb2.PauseRequest, control_pb2.PauseReply],
    ) -> control_pb2.PauseReply:
        self._playback.pause()
        return control_pb2.PauseReply(paused=True)

    async def Resume(
        self,
        request: control_pb2.PauseRequest,
        context: grpc.aio.ServicerContext[control_pb2.PauseRequest, control_pb2.PauseReply],
    ) -> control_pb2.PauseReply:
        self._playback.resume()
        return control_pb2.PauseReply(paused=False)

    async def GetStatus(
        self,
        request: control_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[control_pb2.StatusRequest, control_pb2.Status],
    ) -> control_pb2.Status:
        playback, output = self._playback, self._output
        timing = output.telemetry.callback_timing()
        latency = output.telemetry.chunk_latency(output.device.samplerate)
        return control_pb2.Status(
            state="playing" if playback.playing else "idle",
            queue_length=playback.queue_length,
            device=output.device.name,
            sample_rate=output.device.samplerate,
            channels=output.device.channels,
            counters=control_pb2.Counters(
                utterances=playback.counters.utterances,
                underruns=output.underruns,
                errors=playback.counters.errors,
                fallbacks=playback.counters.fallbacks,
                frames_played=output.frames_played,
            ),
            last_error=playback.last_error,
            endpoint=self._endpoint,
            stream=output.stream_state,
            paused=output.paused,
            # The telemetry dataclasses carry the messages' own field names.
            callback=control_pb2.CallbackTiming(**dataclasses.asdict(timing)),
            chunk_latency=control_pb2.ChunkLatency(**dataclasses.asdict(latency)),
        )

    async def Events(
        self,
        request: control_pb2.EventsRequest,
        context: grpc.aio.ServicerContext[control_pb2.EventsRequest, control_pb2.Event],
    ) -> AsyncIterator[control_pb2.Event]:
        with self._playback.events.listen() as queue:
            # Tells the caller it is listening: nothing from now on is missed.
            await context.send_initial_metadata(())
            while True:
                yield _event_message(await queue.get())

    async def ListDevices(
        self,
        request: control_pb2.ListDevicesRequest,
        context: grpc.aio.ServicerContext[
            control_pb2.ListDevicesRequest, control_pb2.ListDevicesReply
        ],
    ) -> control_pb2.ListDevicesReply:
        return control_pb2.ListDevicesReply(devices=self._devices())


def _priority(name: str) -> Priority:
    if not name:
        return Priority.MESSAGE
    try:
        return Priority(name)
    except ValueError:
        names = ", ".join(p.value for p in Priority)
        raise PriorityError(f"unknown priority {name!r}: use one of {names}") from None


def _caller_code(code: grpc.StatusCode) -> grpc.StatusCode:
    """Clients read UNAVAILABLE as "the daemon is not there"; an upstream outage is
    reported as a failed precondition instead, with the reason in the message."""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        return grpc.StatusCode.FAILED_PRECONDITION
    return code


def _socket_in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ControlServer:
    """Serves PlayerService on ``path`` (mode 0660), removing the socket when stopped."""

    def __init__(self, path: Path, service: PlayerService) -> None:
        self._path = path
        self._service = service
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        path = self._path
        if path.exists() or path.is_symlink():
            if _socket_in_use(path):
                raise ControlError(f"another daemon is already serving on {path}")
            _LOGGER.info("removing stale control socket %s", path)
            path.unlink()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ControlError(f"cannot create the folder for {path}: {err}") from err
        server = grpc.aio.server()
        control_pb2_grpc.add_PlayerServicer_to_server(self._service, server)
        # Created 0600 under this umask, then opened up to the group: never world-writable,
        # not even for a moment.
        old_umask = os.umask(0o177)
        try:
            if server.add_insecure_port(f"unix:{path}") == 0:
                raise ControlError(f"cannot listen on {path}")
            await server.start()
        except RuntimeError as err:
            raise ControlError(f"cannot listen on {path}: {err}") from err
        finally:
            os.umask(old_umask)
        os.chmod(path, SOCKET_MODE)
        self._server = server
        _LOGGER.info("control socket: %s", path)

    async def stop(self, grace: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


def _event_message(event: Event) -> control_pb2.Event:
    fields = {k: v for k, v in dataclasses.asdict(event).items() if v is not None}
    fields["word_timings"] = [control_pb2.WordTiming(**w) for w in fields["word_timings"]]
    return control_pb2.Event(**fields)
