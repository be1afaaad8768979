"""A token SpeechKit refuses is renewed at once and the utterance spoken with the new
one: SpeechKitClient and Resume against the tone server, with tokens from the IAM
stand-in, all in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from player.audio.ring import Frames
from player.auth.authorized_key import AuthorizedKeyCredentials
from player.config import SpeechKitSettings, VoiceSettings
from player.config.credentials import read_service_account_key
from player.errors import SynthesisError
from player.synthesis.interface import Piece, Spoken
from player.synthesis.resume import Resume
from player.synthesis.speechkit import SpeechKitClient
from tests.harness.iam_server import BearerCheck, GeneratedKey, IamServer
from tests.harness.tone_server import ToneScript, ToneServer

RATE = 16000
TIMEOUT = 15.0
TEXT = "Hello there. "


class Sink:
    def __init__(self) -> None:
        self.frames = 0

    async def audio(self, frames: Frames) -> None:
        self.frames += len(frames)

    def spoken(self, spoken: Spoken) -> None:
        pass

    async def withdraw(self, frames: int) -> int:
        return 0


async def given(*items: Piece) -> AsyncIterator[Piece]:
    for item in items:
        yield item


@pytest.fixture
def iam() -> Iterator[IamServer]:
    with IamServer() as server:
        yield server


async def test_a_refused_token_is_renewed_and_the_call_made_again(
    iam: IamServer, tmp_path: Path
) -> None:
    made = GeneratedKey.generate()
    iam.register(made)
    key = read_service_account_key(made.write(tmp_path / "key.json"))
    revoked: set[str] = set()
    refuse_all = asyncio.Event()
    script = ToneScript(
        credentials=BearerCheck(
            lambda t: iam.valid(t) and t not in revoked and not refuse_all.is_set()
        )
    )
    creds = AuthorizedKeyCredentials(key, iam.url)
    renewer = asyncio.create_task(creds.run())
    async with ToneServer(script) as server:
        settings = SpeechKitSettings(endpoint=server.address, tls=False)
        channel = grpc.aio.insecure_channel(server.address)
        try:
            client = SpeechKitClient(channel, settings, VoiceSettings(), RATE, credentials=creds)
            speaking = Resume(client, RATE, retry_s=0.0)
            sink = Sink()
            await asyncio.wait_for(speaking.synthesize(given(TEXT), sink), TIMEOUT)
            first = (await creds.authorization()).split(" ")[1]
            # The service stops taking the token long before it would expire.
            revoked.add(first)

            await asyncio.wait_for(speaking.synthesize(given(TEXT), sink), TIMEOUT)

            # (A refused call may be probed once more: see SpeechKitClient._probe.)
            calls = server.calls
            tokens = [c.metadata["authorization"].split(" ")[1] for c in calls]
            refused = [
                t
                for c, t in zip(calls, tokens, strict=True)
                if c.status is grpc.StatusCode.UNAUTHENTICATED
            ]
            assert calls[0].status is calls[-1].status is grpc.StatusCode.OK
            assert refused
            assert set(refused) == {first} == {tokens[0]}
            assert tokens[-1] != first
            assert iam.exchanges == 2

            # Every token refused (the service account lost its rights): tried once with a
            # renewed token, then reported.
            refuse_all.set()
            with pytest.raises(SynthesisError) as info:
                await asyncio.wait_for(speaking.synthesize(given(TEXT), sink), TIMEOUT)
            assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
            assert tokens[-1] not in str(info.value)
            assert iam.exchanges == 3
        finally:
            await channel.close()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
