"""One SpeechKit ``StreamSynthesis`` call: options, text pieces, half-close; audio out.

A call never waits forever for a server that stopped answering: once the service owes
audio (see `player.synthesis.stream_call`), `first_audio_timeout_s` bounds the wait for
the first chunk and `stall_timeout_s` every silence after it; either ends the call with
DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import grpc

from player.auth import Credentials
from player.config import SpeechKitSettings, VoiceSettings
from player.errors import CredentialsError, SynthesisError
from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2_grpc
from player.synthesis.interface import CallResult, Piece, Sink, VoiceChoice
from player.synthesis.stream_call import Silent, StreamCall, metadata_value

_LOGGER = logging.getLogger(__name__)

_LOUDNESS = {
    "LUFS": tts_pb2.LUFS,
    "MAX_PEAK": tts_pb2.MAX_PEAK,
}

_EXPLAIN = {
    grpc.StatusCode.UNAUTHENTICATED: "authentication failed: SpeechKit rejected the API key "
    "or IAM token",
    grpc.StatusCode.PERMISSION_DENIED: "permission denied: the key or token may not use "
    "SpeechKit synthesis in this folder",
    grpc.StatusCode.INVALID_ARGUMENT: "SpeechKit rejected the request",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "SpeechKit quota exceeded; try again later",
    grpc.StatusCode.UNAVAILABLE: "SpeechKit endpoint unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "SpeechKit did not answer in time",
    grpc.StatusCode.CANCELLED: "synthesis cancelled",
}


CORE_ARTEFACT = "Internal error from Core"
"""What grpc.aio reports instead of the server's status when a write races the end of
the call (see `probe`)."""
# Verdicts a message-less probe call can reproduce faithfully.
_PROBE_EXPLAINS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
    }
)


async def probe(
    stub: tts_service_pb2_grpc.SynthesizerAsyncStub,
    metadata: list[tuple[str, str]],
    timeout: float,  # noqa: ASYNC109 - a bound on the call and its answer together
) -> tuple[grpc.StatusCode, str] | None:
    """The server's real verdict after grpc reported only its internal artefact; None if
    it tells nothing more.

    grpc.aio overwrites the server's status with INTERNAL when a write races the server
    ending the call (grpc/grpc#36066), which is exactly what a rejected key does. A call
    that writes nothing and half-closes at once cannot hit that race, and the service
    checks credentials before it reads a message, so its status tells what happened.
    """
    call = stub.StreamSynthesis(metadata=metadata)
    try:
        async with asyncio.timeout(timeout):
            await call.done_writing()
            async for _ in call:
                pass
    except grpc.aio.AioRpcError as err:
        if err.code() in _PROBE_EXPLAINS:
            return err.code(), err.details() or ""
    except TimeoutError:
        pass
    finally:
        call.cancel()
    return None


def build_options(voice: VoiceSettings, samplerate: int) -> tts_pb2.SynthesisOptions:
    options = tts_pb2.SynthesisOptions(
        voice=voice.voice,
        role=voice.role,
        speed=voice.speed,
        pitch_shift=voice.pitch_shift,
        loudness_normalization_type=_LOUDNESS[voice.loudness],
        output_audio_spec=tts_pb2.AudioFormatOptions(
            raw_audio=tts_pb2.RawAudio(
                audio_encoding=tts_pb2.RawAudio.LINEAR16_PCM, sample_rate_hertz=samplerate
            )
        ),
    )
    if voice.volume is not None:
        options.volume = voice.volume
    return options


class SpeechKitClient:
    """Opens ``StreamSynthesis`` calls on one long-lived channel."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        speechkit: SpeechKitSettings,
        voice: VoiceSettings,
        samplerate: int,
        *,
        credentials: Credentials | None = None,
        fail_fast: bool = False,
    ) -> None:
        """`credentials`: what each call carries in `authorization` (None: nothing).
        `fail_fast`: a channel that just failed to connect fails the call at once,
        instead of waiting up to connect_timeout for the next attempt (for callers that
        have somewhere else to go)."""
        self.credentials = credentials
        """Replaceable between calls (a reloaded config); a call keeps the one it began with."""
        self._channel = channel
        self._stub = tts_service_pb2_grpc.SynthesizerStub(channel)
        self._speechkit = speechkit
        self._voice = voice
        self._options = build_options(voice, samplerate)
        self._samplerate = samplerate
        self._fail_fast = fail_fast

    def configure(self, voice: VoiceSettings, speechkit: SpeechKitSettings | None = None) -> None:
        """Voice and service settings for calls opened from now on (a reloaded config);
        the channel and its endpoint stay."""
        self._voice = voice
        self._options = build_options(voice, self._samplerate)
        if speechkit is not None:
            self._speechkit = speechkit

    def _metadata(self, request_id: str, authorization: str | None) -> list[tuple[str, str]]:
        sk = self._speechkit
        metadata = [("x-client-request-id", request_id)]
        if authorization is not None:
            metadata.append(("authorization", authorization))
        if sk.folder_id:
            metadata.append(("x-folder-id", sk.folder_id))
        metadata.append(("x-data-logging-enabled", "true" if sk.data_logging else "false"))
        return metadata

    async def _authorization(self, credentials: Credentials | None) -> str | None:
        if credentials is None:
            return None
        try:
            return await credentials.authorization()
        except CredentialsError as err:
            message = credentials.scrub(str(err))
            _LOGGER.warning("synthesis failed: %s", message)
            # An unreachable token service is most likely no network: like an
            # unreachable endpoint, it may fall back to the local synthesizer.
            code = (
                grpc.StatusCode.UNAVAILABLE if err.unreachable else grpc.StatusCode.UNAUTHENTICATED
            )
            raise SynthesisError(message, code) from None

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        """Send ``pieces`` (text ending with whitespace, or FORCE) and pass the audio to
        ``sink`` as it arrives. Raises SynthesisError; CancelledError cancels the call."""
        credentials = self.credentials
        options = self._options
        if choice is not None:
            options = build_options(choice.applied(self._voice), self._samplerate)
        authorization = await self._authorization(credentials)
        await self._connected()
        client_id = str(uuid.uuid4())
        call = StreamCall(
            self._stub.StreamSynthesis(metadata=self._metadata(client_id, authorization)),
            self._speechkit,
            self._samplerate,
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(call.send(options, pieces))
                group.create_task(call.receive(sink))
        except* grpc.aio.AioRpcError as errors:
            err = errors.exceptions[0]
            assert isinstance(err, grpc.aio.AioRpcError)
            code, details = err.code(), err.details() or ""
            if code is grpc.StatusCode.INTERNAL and details == CORE_ARTEFACT:
                code, details = await self._probe(authorization)
            renewed = (
                code is grpc.StatusCode.UNAUTHENTICATED
                and credentials is not None
                and authorization is not None
                and credentials.rejected(authorization)
            )
            raise self._error(err, code, details, client_id, credentials, renewed=renewed) from None
        except* Silent as errors:
            silent = errors.exceptions[0]
            assert isinstance(silent, Silent)
            _LOGGER.warning(
                "synthesis failed: %s [DEADLINE_EXCEEDED] (x-client-request-id=%s; "
                "the bound is [speechkit] %s)",
                silent,
                client_id,
                silent.setting,
            )
            raise SynthesisError(str(silent), grpc.StatusCode.DEADLINE_EXCEEDED) from None
        except* Exception as errors:
            # The sink's own errors (a stalled device) go to the caller unwrapped.
            raise errors.exceptions[0] from None
        finally:
            call.rpc.cancel()  # no-op once finished; ends the RPC if we were cancelled
        return await call.result()

    async def _connected(self) -> None:
        """Wait (bounded) for the channel: a call made while grpc is between reconnect
        attempts would fail at once although the endpoint may be back a moment later."""
        ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
        state = self._channel.get_state(try_to_connect=True)
        timeout = self._speechkit.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                while state is not ready:
                    if self._fail_fast and state is failed:
                        raise SynthesisError(
                            self._unavailable("cannot connect"), grpc.StatusCode.UNAVAILABLE
                        )
                    await self._channel.wait_for_state_change(state)
                    state = self._channel.get_state(try_to_connect=True)
        except TimeoutError:
            message = self._unavailable(f"no connection within {timeout:g} s")
            _LOGGER.warning("synthesis failed: %s", message)
            raise SynthesisError(message, grpc.StatusCode.UNAVAILABLE) from None

    async def _probe(self, authorization: str | None) -> tuple[grpc.StatusCode, str]:
        metadata = self._metadata(str(uuid.uuid4()), authorization)
        verdict = await probe(self._stub, metadata, self._speechkit.first_audio_timeout_s)
        # No verdict: the call broke for some other reason, as grpc's INTERNAL said (a
        # transient fault, which `player.synthesis.resume` may retry).
        return verdict or (grpc.StatusCode.INTERNAL, "the stream ended unexpectedly")

    def _unavailable(self, details: str) -> str:
        """Names the endpoint: "unavailable" alone does not say which one to check."""
        return f"{_EXPLAIN[grpc.StatusCode.UNAVAILABLE]} ({self._speechkit.endpoint}): {details}"

    def _error(
        self,
        err: grpc.aio.AioRpcError,
        code: grpc.StatusCode,
        details: str,
        client_id: str,
        credentials: Credentials | None,
        *,
        renewed: bool,
    ) -> SynthesisError:
        # Servers may echo what they were sent; a secret never goes further than here.
        details = credentials.scrub(details) if credentials is not None else details
        request_id = metadata_value(err.initial_metadata(), "x-request-id") or metadata_value(
            err.trailing_metadata(), "x-request-id"
        )
        if code is grpc.StatusCode.UNAVAILABLE:
            message = self._unavailable(details)
        else:
            summary = _EXPLAIN.get(code, f"synthesis failed ({code.name})")
            message = f"{summary}: {details}" if details else summary
        _LOGGER.warning(
            "synthesis failed: %s [%s] (x-request-id=%s, x-client-request-id=%s)%s",
            message,
            code.name,
            request_id or "-",
            client_id,
            "; the credentials are being renewed" if renewed else "",
        )
        return SynthesisError(message, code, request_id, retry_once=renewed)
