"""What one scrape reads from the daemon (`Reading`), and the series built from it.

Every count here is one the daemon keeps anyway (`player.speech.heard.Counters`, the
output's underrun counts): a scrape reads them, nothing on the audio path adds to them.
Labels hold only bounded sets of names (priorities, outcomes, gRPC codes), never text or
an utterance id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from player.speech.playback import Playback
from player.speech.priority import Priority

PREFIX = "speechkit_player_"
OUTCOMES = ("finished", "cancelled", "interrupted", "error")
"""The event kinds an utterance's outcome is counted by."""


@dataclass(frozen=True)
class Reading:
    """The daemon's state at one scrape."""

    outcomes: Mapping[tuple[str, str], int]
    """Utterances by (priority, outcome)."""
    synthesis_errors: Mapping[str, int]
    """Failed utterances by gRPC status code name."""
    requests: Mapping[str, int]
    """Utterances asked for, by the front they came through."""
    fallbacks: int
    resumed: int
    underruns: int
    """Times the ring ran dry: audio arrived slower than real time."""
    device_underruns: int
    """Blocks the sound device reported as underflowed."""
    queue_length: int
    device_up: bool
    cloud_reachable: bool | None
    """None: no endpoint to reach (the local synthesizer only), or not known yet."""
    token_expiry: float | None
    """Unix seconds; None when the credential does not expire."""


def read(
    playback: Playback,
    cloud_reachable: Callable[[], bool | None],
    token_expiry: Callable[[], float | None],
) -> Reading:
    """Only on the event loop: the counters and the callables belong to it."""
    counters, output = playback.counters, playback.output
    return Reading(
        outcomes=dict(counters.outcomes),
        synthesis_errors=dict(counters.synthesis_errors),
        requests=dict(counters.requests),
        fallbacks=counters.fallbacks,
        resumed=counters.resumed,
        underruns=output.underruns,
        device_underruns=output.stream.device_underruns,
        queue_length=playback.queue_length,
        device_up=not output.stream.device_state.lost,
        cloud_reachable=cloud_reachable(),
        token_expiry=token_expiry(),
    )


def build_info(version: str) -> GaugeMetricFamily:
    info = GaugeMetricFamily(
        PREFIX + "build_info", "Always 1; the version of the daemon.", labels=["version"]
    )
    info.add_metric([version], 1)
    return info


def families(reading: Reading) -> Iterator[Metric]:
    """The series of one reading."""
    utterances = CounterMetricFamily(
        PREFIX + "utterances",
        "Utterances by priority and outcome: finished, cancelled (stopped, dropped or "
        "pushed aside), error, or interrupted (a message cut by an important one, counted "
        "again when it ends).",
        labels=["priority", "outcome"],
    )
    for priority in Priority:
        for outcome in OUTCOMES:
            count = reading.outcomes.get((priority.value, outcome), 0)
            utterances.add_metric([priority.value, outcome], count)
    yield utterances
    errors = CounterMetricFamily(
        PREFIX + "synthesis_errors",
        "Utterances whose synthesis failed, by gRPC status code.",
        labels=["code"],
    )
    for code, count in sorted(reading.synthesis_errors.items()):
        errors.add_metric([code], count)
    yield errors
    requests = CounterMetricFamily(
        PREFIX + "requests",
        "Utterances asked for, by the front they came through: control (the CLI and the "
        "Python client), mqtt or ssip.",
        labels=["origin"],
    )
    for origin, count in sorted(reading.requests.items()):
        requests.add_metric([origin], count)
    yield requests
    yield _counter(
        "fallbacks",
        "Utterances the local synthesizer spoke because the endpoint was unreachable.",
        reading.fallbacks,
    )
    yield _counter(
        "resumed_calls",
        "Utterances whose synthesis call broke off and was resumed by a new one.",
        reading.resumed,
    )
    yield _counter(
        "underruns",
        "Times the audio ran out mid-utterance: it arrived slower than real time.",
        reading.underruns,
    )
    yield _counter(
        "device_underruns",
        "Audio blocks the sound device reported as underflowed (the audio callback ran late).",
        reading.device_underruns,
    )
    yield _gauge("queue_length", "Utterances waiting to start synthesis.", reading.queue_length)
    yield _gauge(
        "device_up", "1 while the output device is there, 0 while it is lost.", reading.device_up
    )
    if reading.cloud_reachable is not None:
        yield _gauge(
            "cloud_reachable",
            "1 if the last connection to the SpeechKit endpoint succeeded, 0 if it failed.",
            reading.cloud_reachable,
        )
    if reading.token_expiry is not None:
        yield _gauge(
            "token_expiry_timestamp_seconds",
            "When the credential held now expires, Unix seconds.",
            reading.token_expiry,
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)
