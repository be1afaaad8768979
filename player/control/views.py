"""The control API's messages as JSON objects: what `status` and `events` print, and what
the daemon publishes to an MQTT broker (one shape everywhere)."""

from __future__ import annotations

from player.generated.speechkit_player.control.v1 import control_pb2


def event_dict(event: control_pb2.Event) -> dict[str, object]:
    """An event as a JSON object: kind and id first, then the fields it carries."""
    out: dict[str, object] = {
        "event": event.kind,
        "id": event.utterance_id,
        "time": round(event.time, 3),
    }
    for name in (
        "first_audio_ms",
        "text",
        "start_ms",
        "played_ms",
        "error",
        "reason",
        "origin",
        "client",
    ):
        if event.HasField(name):
            out[name] = getattr(event, name)
    if event.word_timings:
        out["word_timings"] = [
            {"word": w.word, "start_ms": w.start_ms, "length_ms": w.length_ms}
            for w in event.word_timings
        ]
    return out


def status_dict(status: control_pb2.Status) -> dict[str, object]:
    """The status as `speechkit-player status` prints it."""
    counters = status.counters
    return {
        "state": status.state,
        "queue_length": status.queue_length,
        "device": status.device,
        "device_state": status.device_state,
        "sample_rate": status.sample_rate,
        "channels": status.channels,
        "endpoint": status.endpoint,
        "stream": status.stream,
        "output_latency_ms": status.output_latency_ms,
        "paused": status.paused,
        "counters": {
            "utterances": counters.utterances,
            "underruns": counters.underruns,
            "errors": counters.errors,
            "frames_played": counters.frames_played,
            "fallbacks": counters.fallbacks,
            "resumed": counters.resumed,
            "device_underruns": counters.device_underruns,
            "device_reopens": counters.device_reopens,
            "requests": dict(sorted(counters.requests.items())),
        },
        "last_error": status.last_error,
        "callback_us": {
            "calls": status.callback.calls,
            "median": round(status.callback.median_us, 1),
            "p99": round(status.callback.p99_us, 1),
            "max": round(status.callback.max_us, 1),
        },
        "cache": _cache_dict(status.cache) if status.HasField("cache") else None,
        "speaking": _speaking_dict(status.speaking) if status.HasField("speaking") else None,
        "chunk_latency_ms": {
            "chunks": status.chunk_latency.chunks,
            "median": round(status.chunk_latency.median_ms, 1),
            "p95": round(status.chunk_latency.p95_ms, 1),
            "max": round(status.chunk_latency.max_ms, 1),
        },
    }


def _speaking_dict(speaking: control_pb2.Speaking) -> dict[str, object]:
    out: dict[str, object] = {"id": speaking.utterance_id, "origin": speaking.origin}
    if speaking.client:
        out["client"] = speaking.client
    return out


def _cache_dict(cache: control_pb2.CacheStats) -> dict[str, object]:
    return {
        "hits": cache.hits,
        "misses": cache.misses,
        "entries": cache.entries,
        "size_bytes": cache.size_bytes,
        "max_bytes": cache.max_bytes,
        "dir": cache.dir,
    }
