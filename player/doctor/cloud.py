"""The synthesis endpoint: credentials present, its name resolving, a TCP (and TLS)
connection, and the credentials accepted by a one-word synthesis whose audio is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
import uuid

import grpc

from player.auth import Credentials, open_credentials
from player.config import SpeechKitSettings
from player.config.settings import LOCAL
from player.doctor.checks import Check, Findings, ok, problem, skipped
from player.errors import PlayerError
from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2_grpc
from player.synthesis.speechkit import CORE_ARTEFACT, build_options, probe
from player.threads import in_thread

CREDENTIALS, DNS, SYNTHESIS = "credentials", "dns", "synthesis"
DEFAULT_RATE = 48000
"""Hz asked of the service when the audio device was not found."""
SET_CREDENTIALS = (
    "set YANDEX_API_KEY, or in [speechkit] api_key_file, service_account_key_file, or "
    'credentials = "metadata" on a Yandex Cloud VM'
)
AUTH_TIMEOUT = 60.0
"""Seconds the credentials may take to give a header value: a safety bound, since a kind
that fetches tokens bounds its own wait and says why in its error."""
_NOT_USED = "not used: speech goes to the local synthesizer"


def _connection_name(sk: SpeechKitSettings) -> str:
    return "tls" if sk.tls else "tcp"


def _speaks_locally(found: Findings) -> bool:
    sk = found.settings.speechkit
    return sk.endpoint == LOCAL or (found.credentials is None and sk.uses_local)


async def credentials(found: Findings) -> Check:
    sk = found.settings.speechkit
    if sk.endpoint == LOCAL:
        return skipped(CREDENTIALS, 'not needed: endpoint = "local"')
    try:
        creds = open_credentials(sk)
    except PlayerError as err:
        found.credentials_failed = True
        return problem(CREDENTIALS, str(err), SET_CREDENTIALS)
    found.credentials = creds
    if creds is None:
        if sk.uses_local:
            return skipped(
                CREDENTIALS,
                "none: speech goes to the local synthesizer; "
                + SET_CREDENTIALS
                + " to use SpeechKit",
            )
        return skipped(CREDENTIALS, f"none configured; calls to {sk.endpoint} carry none")
    try:
        found.authorization = await _first_authorization(creds, AUTH_TIMEOUT)
    except PlayerError as err:
        found.credentials_failed = True
        return problem(CREDENTIALS, f"{creds.kind}: {creds.scrub(str(err))}", SET_CREDENTIALS)
    except TimeoutError:
        found.credentials_failed = True
        return problem(
            CREDENTIALS,
            f"{creds.kind}: no token within {AUTH_TIMEOUT:g} s",
            "check the network to the token service, or " + SET_CREDENTIALS,
        )
    expires = creds.expires_at()
    until = f", valid until {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))}"
    return ok(CREDENTIALS, f"{creds.kind}{until if expires is not None else ''}")


async def _first_authorization(creds: Credentials, limit: float) -> str:
    """The header value, with the credential's renewal running meanwhile (a kind that
    fetches tokens gets its first one there)."""
    renewal = asyncio.create_task(creds.run())
    try:
        async with asyncio.timeout(limit):
            return await creds.authorization()
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await renewal


def _host_port(endpoint: str) -> tuple[str, int] | None:
    """("host", port) of "host:port" or "[v6]:port"; None for a unix: endpoint."""
    if endpoint.startswith("unix:"):
        return None
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 443


async def dns(found: Findings) -> Check:
    sk = found.settings.speechkit
    if _speaks_locally(found):
        return skipped(DNS, _NOT_USED)
    where = _host_port(sk.endpoint)
    if where is None:
        found.resolved = True
        return skipped(DNS, f"not needed: {sk.endpoint} is a Unix socket")
    found.host, found.port = where
    try:
        infos = await in_thread(
            lambda: socket.getaddrinfo(*where, type=socket.SOCK_STREAM), sk.connect_timeout
        )
    except socket.gaierror as err:
        return problem(
            DNS,
            f"cannot resolve {found.host}: {err.strerror}",
            "check the network and DNS (resolvectl status), or [speechkit] endpoint",
        )
    except TimeoutError:
        return problem(
            DNS,
            f"no answer resolving {found.host} within {sk.connect_timeout:g} s",
            "check the network and the DNS servers (resolvectl status)",
        )
    found.resolved = True
    addresses = sorted({str(info[4][0]) for info in infos})
    return ok(DNS, f"{found.host} -> {', '.join(addresses[:4])}")


async def connection(found: Findings) -> Check:
    sk = found.settings.speechkit
    name = _connection_name(sk)
    if _speaks_locally(found):
        return skipped(name, _NOT_USED)
    if not found.resolved:
        return skipped(name, "needs the endpoint's address")
    context = ssl.create_default_context() if sk.tls else None
    try:
        async with asyncio.timeout(sk.connect_timeout):
            if not found.host:
                _, writer = await asyncio.open_unix_connection(sk.endpoint.removeprefix("unix:"))
            else:
                _, writer = await asyncio.open_connection(
                    found.host,
                    found.port,
                    ssl=context,
                    server_hostname=found.host if sk.tls else None,
                )
    except ssl.SSLCertVerificationError as err:
        return problem(
            name,
            f"{sk.endpoint}: certificate not accepted: {err.verify_message}",
            "check the system clock (date) and CA certificates (apt-get install ca-certificates)",
        )
    except ssl.SSLError as err:
        return problem(
            name,
            f"{sk.endpoint}: TLS handshake failed: {err.reason or err}",
            "set [speechkit] tls = false only for a plaintext local server; else check a proxy",
        )
    except TimeoutError:
        return problem(
            name,
            f"no answer from {sk.endpoint} within {sk.connect_timeout:g} s",
            "check the network, and any firewall or proxy on the way to it",
        )
    except ConnectionRefusedError:
        return problem(
            name,
            f"{sk.endpoint} refused the connection (nothing listens there)",
            "check [speechkit] endpoint (host:port) and that the service runs there",
        )
    except OSError as err:
        return problem(
            name,
            f"cannot connect to {sk.endpoint}: {err.strerror or err}",
            "check [speechkit] endpoint (host:port) and that the service runs there",
        )
    found.reachable = True
    detail = f"connected to {sk.endpoint}"
    if context is not None:
        detail += _certificate(
            writer.get_extra_info("peercert"), writer.get_extra_info("ssl_object")
        )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ok(name, detail)


def _certificate(cert: object, tls: object) -> str:
    """What ssl reports of the connection: "; TLSv1.3, certificate for X, valid until Y"."""
    version = tls.version() if isinstance(tls, ssl.SSLObject) else None
    if not isinstance(cert, dict):
        return f"; {version}" if version else ""
    subject = dict(pair for rdn in cert.get("subject", ()) for pair in rdn)
    return (
        f"; {version or 'TLS'}, certificate for {subject.get('commonName', '?')}, "
        f"valid until {cert.get('notAfter', '?')}"
    )


_REJECTED = {
    grpc.StatusCode.UNAUTHENTICATED: ("credentials rejected", SET_CREDENTIALS),
    grpc.StatusCode.PERMISSION_DENIED: (
        "permission denied",
        "give the service account the role ai.speechkit-tts.user in the folder, or set "
        "[speechkit] folder_id to the key's folder",
    ),
    grpc.StatusCode.UNAVAILABLE: (
        "the service is unavailable",
        "check the network and [speechkit] endpoint; try again later",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        "the service did not answer in time",
        "check the network; raise [speechkit] first_audio_timeout_s on a slow link",
    ),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("quota exceeded", "try again later, or raise the quota"),
}


_REJECTED_FIX = {
    "api_key": "check the API key in YANDEX_API_KEY or [speechkit] api_key / api_key_file: "
    "it is mistyped, revoked, or not a SpeechKit key",
    "iam_token": "IAM tokens expire after 12 hours: use a fresh one, or better an API key "
    "or a service account key, which the player renews itself",
}
"""The fix for a rejected credential, by its kind; others get SET_CREDENTIALS."""


async def synthesis(found: Findings) -> Check:
    sk = found.settings.speechkit
    if _speaks_locally(found):
        return skipped(SYNTHESIS, _NOT_USED)
    if found.credentials_failed:
        return skipped(SYNTHESIS, "needs the credentials")
    if not found.reachable:
        return skipped(SYNTHESIS, f"needs the {_connection_name(sk)} connection")
    rate = found.device.samplerate if found.device is not None else DEFAULT_RATE
    scrub = found.credentials.scrub if found.credentials is not None else str
    limit = sk.connect_timeout + sk.first_audio_timeout_s
    try:
        took = await _one_word(found, rate, limit)
    except grpc.aio.AioRpcError as err:
        code, details = err.code(), err.details() or ""
        if code is grpc.StatusCode.INTERNAL and details == CORE_ARTEFACT:
            code, details = await _probe(found, limit, code, details)
        what, fix = _REJECTED.get(code, ("the service refused the call", SET_CREDENTIALS))
        if code is grpc.StatusCode.UNAUTHENTICATED and found.credentials is not None:
            fix = _REJECTED_FIX.get(found.credentials.kind, fix)
        return problem(SYNTHESIS, f"{what} ({code.name}: {scrub(details)})", fix)
    except TimeoutError:
        what, fix = _REJECTED[grpc.StatusCode.DEADLINE_EXCEEDED]
        return problem(SYNTHESIS, f"{what}: no audio within {limit:g} s", fix)
    if took is None:
        return problem(
            SYNTHESIS,
            "the service ended the call without audio",
            "check [voice] voice and [speechkit] endpoint",
        )
    accepted = "" if found.credentials is None else f"{found.credentials.kind} accepted, "
    return ok(SYNTHESIS, f"{accepted}'test' synthesised: first audio after {took * 1000:.0f} ms")


def _metadata(found: Findings) -> list[tuple[str, str]]:
    metadata = [("x-client-request-id", str(uuid.uuid4()))]
    if found.authorization:
        metadata.append(("authorization", found.authorization))
    if found.settings.speechkit.folder_id:
        metadata.append(("x-folder-id", found.settings.speechkit.folder_id))
    # As the daemon's calls: data_logging = false keeps the test word out of the logs too.
    logging = "true" if found.settings.speechkit.data_logging else "false"
    metadata.append(("x-data-logging-enabled", logging))
    return metadata


def _channel(sk: SpeechKitSettings) -> grpc.aio.Channel:
    if sk.tls:
        return grpc.aio.secure_channel(sk.endpoint, grpc.ssl_channel_credentials())
    return grpc.aio.insecure_channel(sk.endpoint)


async def _one_word(found: Findings, rate: int, limit: float) -> float | None:
    """Seconds to the first audio of "test", then the call is cancelled; None if the call
    ended without audio. Raises AioRpcError or TimeoutError."""
    channel = _channel(found.settings.speechkit)
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            await channel.channel_ready()
            stub = tts_service_pb2_grpc.SynthesizerStub(channel)
            call = stub.StreamSynthesis(metadata=_metadata(found))
            options = build_options(found.settings.voice, rate)
            try:
                await call.write(tts_pb2.StreamSynthesisRequest(options=options))
                text = tts_pb2.SynthesisInput(text="test")
                await call.write(tts_pb2.StreamSynthesisRequest(synthesis_input=text))
                await call.done_writing()
            except asyncio.InvalidStateError:
                pass  # the server ended the call already: reading gives its status
            try:
                async for response in call:
                    if response.audio_chunk.data:
                        return time.monotonic() - started
            finally:
                call.cancel()
        return None
    finally:
        await channel.close()


async def _probe(
    found: Findings, limit: float, code: grpc.StatusCode, details: str
) -> tuple[grpc.StatusCode, str]:
    """The server's real verdict after grpc reported its artefact (see `probe`);
    (`code`, `details`) unchanged if it tells nothing more."""
    channel = _channel(found.settings.speechkit)
    try:
        stub = tts_service_pb2_grpc.SynthesizerStub(channel)
        verdict = await probe(stub, _metadata(found), limit)
    finally:
        await channel.close()
    return verdict or (code, details)
