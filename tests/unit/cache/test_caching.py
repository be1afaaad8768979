"""The caching synthesis: whole utterances are kept as they were heard, anything less is
not, and a kept text plays again with its text marks after their audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from player.audio.ring import Frames
from player.cache.caching import Caching, Engines
from player.cache.store import PhraseStore
from player.config import VoiceSettings
from player.errors import SynthesisError
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, VoiceChoice

pytestmark = pytest.mark.unit

RATE = 8000
ENGINES = Engines("speechkit:tts:443", "piper:default")


class _Sink:
    """Records what a call passes on, in order; takes back what it is told to hold."""

    def __init__(self, keeps: int = 0) -> None:
        self.items: list[tuple[str, object]] = []
        self.keeps = keeps
        """Frames of a withdrawal already heard, so not taken back."""

    async def audio(self, frames: Frames) -> None:
        self.items.append(("audio", len(frames)))

    def spoken(self, spoken: Spoken) -> None:
        self.items.append(("spoken", spoken.text))

    async def withdraw(self, frames: int) -> int:
        return max(0, frames - self.keeps)

    @property
    def frames(self) -> int:
        return sum(int(n) for kind, n in self.items if kind == "audio")  # type: ignore[call-overload]


class _Tones:
    """A synthesis that speaks each text piece as 0.1 s of a level, marking its start."""

    def __init__(self, *, fail: bool = False, withdraw: int = 0, fallback: bool = False) -> None:
        self.calls = 0
        self._fail, self._withdraw, self._fallback = fail, withdraw, fallback

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        self.calls += 1
        frames = 0
        async for piece in pieces:
            if not isinstance(piece, str):
                continue
            await sink.audio(np.full(RATE // 10, 0.25, np.float32))
            sink.spoken(Spoken(piece, frames * 1000 // RATE))
            frames += RATE // 10
            if self._fail:
                raise SynthesisError("the service broke off")
        if self._withdraw:
            # As a resumed call does: the half-received last piece taken back, and
            # spoken again whole by the next call.
            frames -= await sink.withdraw(self._withdraw)
            await sink.audio(np.full(RATE // 10, 0.5, np.float32))
            sink.spoken(Spoken("Two. ", frames * 1000 // RATE))
            frames += RATE // 10
        return CallResult(frames, "r1", 0.01, fallback=self._fallback)


async def _pieces(*texts: str) -> AsyncIterator[Piece]:
    for text in texts:
        yield text


def _caching(tmp_path: Path, inner: _Tones) -> Caching:
    store = PhraseStore(tmp_path, 10_000_000)
    store.open()
    return Caching(inner, store, VoiceSettings(), ENGINES, RATE)


async def test_a_whole_utterance_is_kept_and_plays_again_without_a_call(tmp_path: Path) -> None:
    inner = _Tones()
    caching = _caching(tmp_path, inner)
    await caching.synthesize(_pieces("One. ", "Two. "), _Sink())
    await caching.aclose()

    again = _Sink()
    result = await caching.recall("One.  Two.", again)

    assert inner.calls == 1
    assert result is not None
    assert result.cached
    assert result.frames == again.frames == RATE // 5
    # Each mark after the audio it starts in: the second piece starts at 100 ms.
    kinds = [kind for kind, _ in again.items]
    assert kinds.index("spoken") > kinds.index("audio")
    second = again.items.index(("spoken", "Two. "))
    heard_before = sum(int(n) for kind, n in again.items[:second] if kind == "audio")  # type: ignore[call-overload]
    assert heard_before > RATE // 10
    assert await caching.recall("One. Three.", _Sink()) is None


async def test_a_phrase_is_kept_under_the_voice_its_utterance_chose(tmp_path: Path) -> None:
    inner = _Tones()
    caching = _caching(tmp_path, inner)
    faster = VoiceChoice(rate=50)
    await caching.synthesize(_pieces("One. "), _Sink(), faster)
    await caching.aclose()

    assert await caching.recall("One.", _Sink()) is None
    assert await caching.recall("One.", _Sink(), choice=VoiceChoice(rate=40)) is None
    assert await caching.recall("One.", _Sink(), choice=faster) is not None
    assert caching.find("One.", faster) is not None
    assert caching.find("One.") is None


async def test_a_failed_call_keeps_nothing(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones(fail=True))
    with pytest.raises(SynthesisError):
        await caching.synthesize(_pieces("One. "), _Sink())
    await caching.aclose()
    assert caching.store.stats().entries == 0


async def test_a_cancelled_call_keeps_nothing(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones())
    blocked = asyncio.Event()

    async def endless() -> AsyncIterator[Piece]:
        yield "One. "
        await blocked.wait()
        yield "Two. "

    task = asyncio.create_task(caching.synthesize(endless(), _Sink()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await caching.aclose()
    assert caching.store.stats().entries == 0


async def test_audio_taken_back_whole_is_left_out(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones(withdraw=RATE // 10))
    await caching.synthesize(_pieces("One. ", "Two. "), _Sink())
    await caching.aclose()
    played = _Sink()
    assert await caching.recall("One. Two.", played) is not None
    # The first "Two." (level 0.25) is gone; its second saying (level 0.5) is kept.
    assert played.frames == RATE // 5
    assert played.items.count(("spoken", "Two. ")) == 1
    (kept,) = caching.store.listing()
    assert kept.entry.frames == RATE // 5


async def test_audio_partly_heard_when_taken_back_is_not_kept(tmp_path: Path) -> None:
    # Some of the withdrawn audio had been heard and stays: the next call repeats it.
    caching = _caching(tmp_path, _Tones(withdraw=RATE // 10))
    await caching.synthesize(_pieces("One. ", "Two. "), _Sink(keeps=10))
    await caching.aclose()
    assert caching.store.stats().entries == 0


async def test_the_local_voice_standing_in_is_kept_as_its_own(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones(fallback=True))
    await caching.synthesize(_pieces("One. "), _Sink())
    await caching.aclose()
    (kept,) = caching.store.listing()
    assert kept.entry.engine == "piper:default"
    # Not what the endpoint would have said: a lookup for the endpoint's voice misses.
    assert await caching.recall("One.", _Sink()) is None


async def test_recording_plays_nothing_and_keeps_it(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones())
    result, kept = await caching.record(_pieces("Warm. "))
    assert kept
    assert result.frames == RATE // 10
    assert caching.find("Warm.") == ("speechkit:tts:443", 100)


async def test_a_call_during_which_the_voice_changed_is_not_kept(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones())
    release = asyncio.Event()

    async def slow() -> AsyncIterator[Piece]:
        yield "One. "
        await release.wait()
        yield "Two. "

    call = asyncio.create_task(caching.synthesize(slow(), _Sink()))
    await asyncio.sleep(0)
    caching.configure(VoiceSettings(voice="alena"), ENGINES)
    release.set()
    await call
    await caching.aclose()
    assert caching.store.stats().entries == 0
    # The next call, all in the new voice, is kept under it.
    await caching.synthesize(_pieces("One. ", "Two. "), _Sink())
    await caching.aclose()
    (kept,) = caching.store.listing()
    assert kept.entry.voice == "alena"


async def test_warming_through_the_local_stand_in_keeps_nothing(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones(fallback=True))
    result, kept = await caching.record(_pieces("Warm. "))
    assert result.fallback
    assert not kept
    assert caching.store.stats().entries == 0


async def test_found_is_told_only_when_there_is_something_to_play(tmp_path: Path) -> None:
    caching = _caching(tmp_path, _Tones())
    told: list[str] = []
    assert await caching.recall("Nothing.", _Sink(), lambda: told.append("x")) is None
    assert told == []
    await caching.record(_pieces("Something. "))
    sink = _Sink()
    assert (
        await caching.recall("Something.", sink, lambda: told.append(str(sink.frames))) is not None
    )
    assert told == ["0"]
