"""The phrase cache over the control API: warming it with phrases, listing and clearing
it, and its numbers in `status`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from player.cache.caching import Caching
from player.errors import SynthesisError
from player.generated.speechkit_player.control.v1 import control_pb2
from player.speech.priority import Priority
from player.speech.requests import Origin, Speaker
from player.speech.utterance import worth_starting

_LOGGER = logging.getLogger(__name__)


def stats(caching: Caching | None) -> control_pb2.CacheStats | None:
    if caching is None:
        return None
    store = caching.store
    numbers = store.stats()
    return control_pb2.CacheStats(
        hits=numbers.hits,
        misses=numbers.misses,
        entries=numbers.entries,
        size_bytes=numbers.size_bytes,
        max_bytes=numbers.max_bytes,
        dir=str(store.directory),
    )


async def warm(
    caching: Caching, texts: list[str], speaker: Speaker
) -> AsyncIterator[control_pb2.WarmCacheReply]:
    """Each text synthesised into the cache unless it is there already, one at a time."""
    for line in texts:
        yield await _warm_one(caching, line, speaker)


async def _warm_one(caching: Caching, line: str, speaker: Speaker) -> control_pb2.WarmCacheReply:
    reply = control_pb2.WarmCacheReply(text=line)
    if not worth_starting(line, speaker.text):
        reply.outcome, reply.error = "failed", "nothing to speak in it"
        return reply
    # The same pieces a `say` of this line sends, so that it finds what is kept here.
    utterance = speaker.utterance(Priority.MESSAGE, Origin("control"))
    utterance.feed(line)
    utterance.close()
    whole = utterance.whole_text
    if not utterance.has_speech or whole is None:
        reply.outcome, reply.error = "failed", "nothing to speak in it"
        return reply
    found = await asyncio.to_thread(caching.find, whole)
    if found is not None:
        reply.outcome, reply.engine, reply.duration_ms = "already cached", *found
        return reply
    try:
        result, kept = await caching.record(utterance.pieces())
    except SynthesisError as err:
        reply.outcome, reply.error = "failed", str(err)
        return reply
    except Exception:
        # A bug must cost one phrase, not the rest of the list.
        _LOGGER.exception("warming %r failed", line[:40])
        reply.outcome, reply.error = "failed", "internal error (see the daemon's log)"
        return reply
    finally:
        utterance.resolve(0)
    reply.engine = caching.engine_of(result)
    reply.duration_ms = result.frames * 1000 // caching.samplerate
    if kept:
        reply.outcome = "cached"
    elif result.fallback:
        reply.outcome = "failed"
        reply.error = (
            "the endpoint could not be reached (the local voice spoke it, and a `say` does "
            "not play that in the endpoint's place); warm again when it can be"
        )
    else:
        reply.outcome, reply.error = "failed", "its audio could not be kept (see the daemon's log)"
    return reply


async def listing(caching: Caching) -> control_pb2.ListCacheReply:
    # Off the loop: a folder of thousands of entries on an SD card takes a while.
    listed = await asyncio.to_thread(caching.store.listing)
    return control_pb2.ListCacheReply(
        entries=[
            control_pb2.CacheEntry(
                text=item.entry.text,
                voice=item.entry.voice,
                engine=item.entry.engine,
                duration_ms=item.entry.duration_ms,
                size_bytes=item.size_bytes,
                last_played=item.last_played,
            )
            for item in listed
        ]
    )


async def clear(caching: Caching) -> control_pb2.ClearCacheReply:
    removed, freed = await asyncio.to_thread(caching.store.clear)
    return control_pb2.ClearCacheReply(removed=removed, freed_bytes=freed)
