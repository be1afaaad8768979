"""`fallback = "local"`: an utterance the cloud cannot take is spoken locally instead."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import grpc

from player.audio.ring import Frames
from player.errors import SynthesisError
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, Synthesis, VoiceChoice
from player.synthesis.replay import Replay

_LOGGER = logging.getLogger(__name__)

# What "cannot reach the cloud" looks like: DNS and TLS failures surface as UNAVAILABLE.
# Authentication and argument errors are the user's to fix and are never hidden.
FALLBACK_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
WARN_INTERVAL = 30.0
"""Seconds between fallback warnings while the cloud stays unreachable."""


class _Tracking:
    """Passes a call's output on, noting whether any audio came."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.heard = False

    async def audio(self, frames: Frames) -> None:
        self.heard = True
        await self._sink.audio(frames)

    def spoken(self, spoken: Spoken) -> None:
        self._sink.spoken(spoken)

    async def withdraw(self, frames: int) -> int:
        return await self._sink.withdraw(frames)


class Fallback:
    """Tries `primary`; if it cannot be reached before any audio arrived, the same text
    goes to `local`. Audio already played is never repeated: a call that breaks off
    mid-way fails as it would without a fallback."""

    def __init__(self, primary: Synthesis, local: Synthesis) -> None:
        self._primary = primary
        self._local = local
        self._last_warning = -WARN_INTERVAL
        self._quiet = 0

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        replay = Replay(pieces)
        pump = asyncio.create_task(replay.pump())
        tracking = _Tracking(sink)
        try:
            try:
                return await self._primary.synthesize(replay.reader(), tracking, choice)
            except SynthesisError as err:
                if err.code not in FALLBACK_CODES or tracking.heard:
                    raise
                self._warn(err)
            result = await self._local.synthesize(replay.reader(), sink, choice)
            return dataclasses.replace(result, fallback=True)
        finally:
            pump.cancel()
            await asyncio.wait([pump])

    def _warn(self, err: SynthesisError) -> None:
        now = time.monotonic()
        if now - self._last_warning < WARN_INTERVAL:
            self._quiet += 1
            return
        more = f" ({self._quiet} more since the last warning)" if self._quiet else ""
        _LOGGER.warning("%s; speaking through the local synthesizer%s", err, more)
        self._last_warning, self._quiet = now, 0
