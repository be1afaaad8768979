"""What every SpeechKit v3-compatible server of ours shares: the service's checks and
limits, the request stream's rules, and one wrapper that authenticates a call, tags it
with an ``x-request-id`` and ends it with the right status.

The tone server (tests) and the local Piper server both build on it, so they refuse
exactly what the cloud refuses, with the same codes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from player import limits
from player.errors import ClientGone, Rejected
from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2

_LOGGER = logging.getLogger(__name__)

UNAUTHENTICATED_DETAILS = "Token is invalid or has expired."

SERVICE = tts_service_pb2.DESCRIPTOR.services_by_name["Synthesizer"].full_name

# Any servicer context: both RPC shapes share the wrapper below.
Context = aio.ServicerContext[Any, Any]


def invalid(details: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, details)


@dataclass(frozen=True)
class Credentials:
    """What a server accepts in ``authorization``; both None accepts anything."""

    api_key: str | None = None
    """Accept ``Api-Key <this>`` (scheme case-insensitive)."""
    iam_token: str | None = None
    """Accept ``Bearer <this>``."""

    def accept(self, metadata: dict[str, str]) -> bool:
        if self.api_key is None and self.iam_token is None:
            return True
        scheme, _, credential = metadata.get("authorization", "").strip().partition(" ")
        expected = {"api-key": self.api_key, "bearer": self.iam_token}.get(scheme.lower())
        return expected is not None and hmac.compare_digest(
            credential.strip().encode(), expected.encode()
        )


@dataclass(frozen=True)
class OutputFormat:
    rate: int
    """Samples per second of the LINEAR16 audio."""
    wav: bool
    """Audio goes in a WAV container: a header first, then the same samples."""


def output_format(spec: tts_pb2.AudioFormatOptions | None, *, allow_wav: bool) -> OutputFormat:
    """The format `spec` asks for (None: the service default), or Rejected."""
    kind = spec.WhichOneof("AudioFormat") if spec is not None else None
    if kind == "raw_audio":
        assert spec is not None
        if spec.raw_audio.audio_encoding != tts_pb2.RawAudio.LINEAR16_PCM:
            raise invalid("raw_audio.audio_encoding must be LINEAR16_PCM")
        rate = spec.raw_audio.sample_rate_hertz
        low, high = limits.RATE_HZ
        if not low <= rate <= high:
            raise invalid(f"sample_rate_hertz {rate} is outside {low}..{high}")
        return OutputFormat(rate, wav=False)
    wav_asked = kind is None or (
        spec is not None and spec.container_audio.container_audio_type == tts_pb2.ContainerAudio.WAV
    )
    if allow_wav and wav_asked:
        return OutputFormat(limits.WAV_RATE_HZ, wav=True)
    if kind == "container_audio":
        assert spec is not None
        name = tts_pb2.ContainerAudio.ContainerAudioType.Name(
            spec.container_audio.container_audio_type
        )
        supported = "raw_audio LINEAR16_PCM or container WAV" if allow_wav else "raw_audio"
        raise invalid(f"container_audio {name} is not supported: ask for {supported}")
    raise invalid(
        "output_audio_spec is unset: this server only sends raw_audio LINEAR16_PCM "
        "(no container, no WAV header)"
    )


def check_voice_options(
    voice: str,
    speed: float,
    volume: float,
    pitch_shift: float,
    loudness: tts_pb2.LoudnessNormalizationType.ValueType,
    voices: frozenset[str],
) -> None:
    """Raise Rejected for what SpeechKit refuses among the voice options."""
    if voice and voice not in voices:
        raise invalid(f"unknown voice {voice!r}")
    low, high = limits.SPEED
    if speed != 0 and not low <= speed <= high:
        raise invalid(f"speed {speed} is outside {low:g}..{high:g}")
    low, high = limits.PITCH_SHIFT_HZ
    if not low <= pitch_shift <= high:
        raise invalid(f"pitch_shift {pitch_shift} is outside {low:g}..{high:g} Hz")
    if loudness == tts_pb2.MAX_PEAK:
        low, high = limits.VOLUME_MAX_PEAK
        if volume != 0 and not low < volume <= high:
            raise invalid(f"volume {volume} is outside ({low:g}, {high:g}] for MAX_PEAK")
    else:
        low, high = limits.VOLUME_LUFS
        if volume != 0 and not low <= volume < high:
            raise invalid(f"volume {volume} is outside [{low:g}, {high:g}) for LUFS")


def check_options(
    options: tts_pb2.SynthesisOptions, voices: frozenset[str], *, allow_wav: bool
) -> OutputFormat:
    """Validate a StreamSynthesis call's options; return its output format or raise Rejected."""
    check_voice_options(
        options.voice,
        options.speed,
        options.volume,
        options.pitch_shift,
        options.loudness_normalization_type,
        voices,
    )
    spec = options.output_audio_spec if options.HasField("output_audio_spec") else None
    return output_format(spec, allow_wav=allow_wav)


async def read_stream(
    requests: AsyncIterator[tts_pb2.StreamSynthesisRequest],
    on_options: Callable[[tts_pb2.SynthesisOptions], None],
    on_text: Callable[[str], None],
    on_force: Callable[[], None],
) -> None:
    """Enforce the request stream's rules (options first and once, the character limit)
    and hand each event on. Returns at half-close; raises Rejected."""
    chars = 0
    started = False
    async for request in requests:
        kind = request.WhichOneof("Event")
        if not started:
            if kind != "options":
                raise invalid(f"the first message must carry options, got {kind or 'none'}")
            on_options(request.options)
            started = True
        elif kind == "options":
            raise invalid("options can only be sent once, in the first message")
        elif kind == "synthesis_input":
            text = request.synthesis_input.text
            chars += len(text)
            if chars > limits.TEXT_PER_CALL:
                raise invalid(f"text exceeds {limits.TEXT_PER_CALL} characters per stream")
            on_text(text)
        elif kind == "force_synthesis":
            on_force()
        else:
            raise invalid("empty request: set options, synthesis_input or force_synthesis")
    if not started:
        raise invalid("the stream ended before options: the first message must carry them")


def metadata_dict(context: Context) -> dict[str, str]:
    pairs = context.invocation_metadata() or ()
    return {k: v if isinstance(v, str) else v.decode("latin-1") for k, v in pairs}


async def serve_call(
    context: Context,
    credentials: Credentials,
    metadata: dict[str, str],
    body: Callable[[], Awaitable[None]],
    on_status: Callable[[grpc.StatusCode], None] = lambda code: None,
) -> None:
    """Authenticate, send ``x-request-id``, run `body`; end the call with the status a
    Rejected from `body` carries, telling `on_status` first. CancelledError means the
    client went away."""
    request_id = str(uuid.uuid4())
    client_id = metadata.get("x-client-request-id", "-")
    rejection: Rejected | None = None
    try:
        if not credentials.accept(metadata):
            raise Rejected(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_DETAILS)
        await context.send_initial_metadata((("x-request-id", request_id),))
        await body()
    except* Rejected as group:
        first = group.exceptions[0]
        assert isinstance(first, Rejected)
        rejection = first
    except* ClientGone:
        # What grpc does to the handler once it notices the cancel, done now so the
        # failed write is not logged as a servicer error.
        raise asyncio.CancelledError from None
    if rejection is None:
        on_status(grpc.StatusCode.OK)
        return
    on_status(rejection.code)
    _LOGGER.info(
        "call %s (client %s) ends with %s: %s",
        request_id, client_id, rejection.code.name, rejection.details,
    )  # fmt: skip
    await context.abort(rejection.code, rejection.details, (("x-request-id", request_id),))


async def send(context: Context, response: object) -> None:
    """Write one response; a dead call raises ClientGone."""
    try:
        await context.write(response)
    except Exception as exc:  # grpc raises its private ExecuteBatchError here
        raise ClientGone from exc


def register(
    server: aio.Server,
    stream_synthesis: Callable[..., Awaitable[None]],
    utterance_synthesis: Callable[..., Awaitable[None]] | None = None,
) -> None:
    """Add the Synthesizer service's handlers to `server`."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "StreamSynthesis": grpc.stream_stream_rpc_method_handler(
            stream_synthesis,
            request_deserializer=tts_pb2.StreamSynthesisRequest.FromString,
            response_serializer=tts_pb2.StreamSynthesisResponse.SerializeToString,
        )
    }
    if utterance_synthesis is not None:
        handlers["UtteranceSynthesis"] = grpc.unary_stream_rpc_method_handler(
            utterance_synthesis,
            request_deserializer=tts_pb2.UtteranceSynthesisRequest.FromString,
            response_serializer=tts_pb2.UtteranceSynthesisResponse.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def bound_address(address: str, port: int) -> str:
    """Where clients dial a server that listened on `address` and got `port`."""
    return address if address.startswith("unix:") else f"{address.rsplit(':', 1)[0]}:{port}"
