"""The control server: our own gRPC service on a local Unix socket."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Never

import grpc

from player.audio.output import AudioOutput
from player.cache.caching import Caching
from player.control import cache_rpc
from player.errors import OutputError, PriorityError, SynthesisError, TextError
from player.generated.speechkit_player.control.v1 import control_pb2, control_pb2_grpc
from player.speech.events import Event
from player.speech.requests import Origin, Saying, Speaker, priority_named
from player.speech.utterance import Utterance

_LOGGER = logging.getLogger(__name__)


DeviceLister = Callable[[], list[control_pb2.Device]]


class PlayerService(control_pb2_grpc.PlayerServicer):
    def __init__(
        self,
        speaker: Speaker,
        output: AudioOutput,
        endpoint: str,
        devices: DeviceLister,
        cache: Caching | None = None,
    ) -> None:
        self._cache = cache
        self._speaker = speaker
        self._playback = speaker.playback
        self._output = output
        self._endpoint = endpoint
        self._devices = devices

    async def Say(
        self,
        request_iterator: AsyncIterator[control_pb2.SayRequest],
        context: grpc.aio.ServicerContext[control_pb2.SayRequest, control_pb2.SayReply],
    ) -> control_pb2.SayReply:
        said = _SayInput(self._speaker, context)
        try:
            return await self._say(said, request_iterator, context)
        except (PriorityError, TextError, SynthesisError, OutputError) as err:
            await self._refuse(said.utterance, err, context)
        except asyncio.CancelledError:
            # The caller went away (Ctrl-C, a broken input) before its answer: what it
            # asked for is no longer wanted.
            said.cancel()
            await self._drop(said.utterance)
            raise

    async def _say(
        self,
        said: _SayInput,
        requests: AsyncIterator[control_pb2.SayRequest],
        context: grpc.aio.ServicerContext[control_pb2.SayRequest, control_pb2.SayReply],
    ) -> control_pb2.SayReply:
        utterance = await said.read(requests)
        if utterance is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, said.nothing_to_say())
        utterance.close()
        if not utterance.has_speech and not utterance.done.done():
            # Its start looked like words, but all of it was markup after all (a link's
            # URL, a pause mark): it ends at once, with nothing played and no error.
            await self._playback.cancel(utterance, "nothing to speak in its text")
            return control_pb2.SayReply(utterance_id=utterance.id)
        if not said.wait and not utterance.done.done():
            return control_pb2.SayReply(utterance_id=utterance.id)
        frames = await utterance.done
        played_ms = frames * 1000 // self._output.device.samplerate
        return control_pb2.SayReply(utterance_id=utterance.id, played_ms=played_ms)

    async def _refuse(
        self,
        utterance: Utterance | None,
        err: PriorityError | TextError | SynthesisError | OutputError,
        context: grpc.aio.ServicerContext[control_pb2.SayRequest, control_pb2.SayReply],
    ) -> Never:
        """Ends a Say call with the status that tells the caller what went wrong."""
        code = grpc.StatusCode.INVALID_ARGUMENT
        if isinstance(err, TextError):
            # One closed for idleness still speaks what it had: only the late text is refused.
            if utterance is not None and not utterance.idle_closed:
                await self._drop(utterance)
        elif isinstance(err, SynthesisError):
            code = _caller_code(err.code)
        elif isinstance(err, OutputError):
            code = grpc.StatusCode.FAILED_PRECONDITION
        await context.abort(code, str(err))

    async def _drop(self, utterance: Utterance | None) -> None:
        if utterance is not None and not utterance.done.done():
            utterance.close()
            await self._speaker.cancel(utterance)

    async def Stop(
        self,
        request: control_pb2.StopRequest,
        context: grpc.aio.ServicerContext[control_pb2.StopRequest, control_pb2.StopReply],
    ) -> control_pb2.StopReply:
        return control_pb2.StopReply(cancelled=await self._speaker.stop())

    async def Cancel(
        self,
        request: control_pb2.CancelRequest,
        context: grpc.aio.ServicerContext[control_pb2.CancelRequest, control_pb2.CancelReply],
    ) -> control_pb2.CancelReply:
        utterance = self._speaker.find(request.utterance_id)
        cancelled = utterance is not None and await self._speaker.cancel(utterance)
        _LOGGER.info("cancel %s: %s", request.utterance_id, "done" if cancelled else "not found")
        return control_pb2.CancelReply(cancelled=cancelled)

    async def Pause(
        self,
        request: control_pb2.PauseRequest,
        context: grpc.aio.ServicerContext[control_pb2.PauseRequest, control_pb2.PauseReply],
    ) -> control_pb2.PauseReply:
        self._speaker.pause()
        return control_pb2.PauseReply(paused=True)

    async def Resume(
        self,
        request: control_pb2.PauseRequest,
        context: grpc.aio.ServicerContext[control_pb2.PauseRequest, control_pb2.PauseReply],
    ) -> control_pb2.PauseReply:
        self._speaker.resume()
        return control_pb2.PauseReply(paused=False)

    async def GetStatus(
        self,
        request: control_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[control_pb2.StatusRequest, control_pb2.Status],
    ) -> control_pb2.Status:
        return self.status()

    def status(self) -> control_pb2.Status:
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
                device_underruns=output.stream.device_underruns,
                errors=playback.counters.errors,
                fallbacks=playback.counters.fallbacks,
                resumed=playback.counters.resumed,
                device_reopens=output.stream.device_state.reopens,
                frames_played=output.frames_played,
                requests=dict(playback.counters.requests),
            ),
            # While the device is away, why: that is what holds every utterance up.
            last_error=output.stream.device_state.reason or playback.last_error,
            endpoint=self._endpoint,
            stream=output.stream.state,
            paused=output.paused,
            device_state=output.stream.device_state.state,
            # The telemetry dataclasses carry the messages' own field names.
            callback=control_pb2.CallbackTiming(**dataclasses.asdict(timing)),
            chunk_latency=control_pb2.ChunkLatency(**dataclasses.asdict(latency)),
            cache=cache_rpc.stats(self._cache),
            output_latency_ms=output.stream.latency_ms,
            speaking=self._speaking(),
        )

    def _speaking(self) -> control_pb2.Speaking | None:
        utterance = self._playback.current
        if utterance is None:
            return None
        origin = utterance.origin
        return control_pb2.Speaking(
            utterance_id=utterance.id, origin=origin.front, client=origin.client
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
                yield event_message(await queue.get())

    async def WarmCache(
        self,
        request: control_pb2.WarmCacheRequest,
        context: grpc.aio.ServicerContext[control_pb2.WarmCacheRequest, control_pb2.WarmCacheReply],
    ) -> AsyncIterator[control_pb2.WarmCacheReply]:
        caching = await self._caching(context)
        async for reply in cache_rpc.warm(caching, list(request.texts), self._speaker):
            yield reply

    async def ListCache(
        self,
        request: control_pb2.ListCacheRequest,
        context: grpc.aio.ServicerContext[control_pb2.ListCacheRequest, control_pb2.ListCacheReply],
    ) -> control_pb2.ListCacheReply:
        return await cache_rpc.listing(await self._caching(context))

    async def ClearCache(
        self,
        request: control_pb2.ClearCacheRequest,
        context: grpc.aio.ServicerContext[
            control_pb2.ClearCacheRequest, control_pb2.ClearCacheReply
        ],
    ) -> control_pb2.ClearCacheReply:
        reply = await cache_rpc.clear(await self._caching(context))
        _LOGGER.info("phrase cache cleared: %d entries", reply.removed)
        return reply

    async def _caching(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caching:
        if self._cache is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the phrase cache is off ([cache] max_mb = 0, or its folder could not be "
                "made: see the daemon's log)",
            )
        return self._cache

    async def ListDevices(
        self,
        request: control_pb2.ListDevicesRequest,
        context: grpc.aio.ServicerContext[
            control_pb2.ListDevicesRequest, control_pb2.ListDevicesReply
        ],
    ) -> control_pb2.ListDevicesReply:
        # The lister may start a process to see the current devices: not on the loop.
        try:
            devices = await asyncio.to_thread(self._devices)
        except OutputError as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        return control_pb2.ListDevicesReply(devices=devices)


class _SayInput:
    """One Say call's requests: the first carries `wait`, `complete` and the priority; the
    text goes to one `Saying`, whose utterance's id is sent once it is queued."""

    def __init__(
        self,
        speaker: Speaker,
        context: grpc.aio.ServicerContext[control_pb2.SayRequest, control_pb2.SayReply],
    ) -> None:
        self._speaker = speaker
        self._context = context
        self._reader: asyncio.Task[None] | None = None
        self._saying: Saying | None = None
        self.wait = False

    @property
    def utterance(self) -> Utterance | None:
        return self._saying.utterance if self._saying is not None else None

    async def read(self, requests: AsyncIterator[control_pb2.SayRequest]) -> Utterance | None:
        """Read to the end of the input, or until the utterance ends early; the utterance,
        None if the text was blank."""
        self._reader = asyncio.create_task(self._read(requests))
        try:
            await self._reader
        except asyncio.CancelledError:
            # Cancelled by `_abandon` (the utterance failed): its outcome is the answer.
            # Cancelled from outside, or before anything was queued: pass it on.
            this = asyncio.current_task()
            if self.utterance is None or (this is not None and this.cancelling()):
                raise
        return self.utterance

    def cancel(self) -> None:
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self, requests: AsyncIterator[control_pb2.SayRequest]) -> None:
        async for request in requests:
            if self._saying is None:
                self.wait = request.wait
                self._saying = self._speaker.saying(
                    priority_named(request.priority),
                    Origin("control"),
                    complete=request.complete,
                    announce=self._announce,
                )
            await self._saying.feed(request.text)

    def nothing_to_say(self) -> str:
        """Why a text that ended without an utterance is refused."""
        if self._saying is None:
            return "nothing to say: the text is empty"
        return self._saying.nothing_to_say()

    async def _announce(self, utterance: Utterance) -> None:
        utterance.done.add_done_callback(self._abandon)
        # The id goes out first: a caller may want to cancel it at once.
        await self._context.send_initial_metadata((("utterance-id", utterance.id),))

    def _abandon(self, done: asyncio.Future[int]) -> None:
        # An utterance that failed while its text was still streaming in: tell the
        # caller now rather than after its producer has finished.
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()


def _caller_code(code: grpc.StatusCode) -> grpc.StatusCode:
    """Clients read UNAVAILABLE as "the daemon is not there"; an upstream outage is
    reported as a failed precondition instead, with the reason in the message."""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        return grpc.StatusCode.FAILED_PRECONDITION
    return code


def event_message(event: Event) -> control_pb2.Event:
    fields = {k: v for k, v in dataclasses.asdict(event).items() if v is not None}
    fields["word_timings"] = [control_pb2.WordTiming(**w) for w in fields["word_timings"]]
    return control_pb2.Event(**fields)
