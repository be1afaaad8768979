"""What one contender's run looked like on the sink, and statistics over runs."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import numpy as np

from tests.harness import audio_analysis as aa
from tests.harness.pulse import Recorder

RATE = Recorder.rate
GAP_S = 0.010
"""A silence this long inside an utterance counts as a gap (a stutter)."""
THRESHOLD = 0.01
"""-40 dBFS: what counts as sound."""


@dataclass
class Run:
    contender: str
    first_audio_ms: float
    """Request to the first sample heard on the sink's monitor."""
    added_ms: float
    """first_audio_ms minus the server's first-chunk delay: what the client adds."""
    gaps: int
    """Silences over 10 ms inside the utterance (tone server: there are none in the audio)."""
    longest_gap_ms: float
    underruns: int
    """Counted by the daemon's callback; -1 where the contender cannot tell."""
    total_ms: float
    """Request to the last sample heard."""
    extra: dict[str, float] = field(default_factory=dict)


def heard(recorder: Recorder, since: int, min_sound_s: float, timeout: float) -> np.ndarray:
    """The recording from sample `since`, once it holds `min_sound_s` of sound then 0.3 s
    of silence."""

    def done(x: np.ndarray) -> bool:
        spans = aa.sound_spans(x[since:], RATE, threshold=THRESHOLD)
        total = sum(end - start for start, end in spans)
        return (
            bool(spans)
            and total >= min_sound_s * RATE
            and (len(x) - since - spans[-1][1] >= 0.3 * RATE)
        )

    done.__name__ = f"{min_sound_s:.2f} s of sound"
    return recorder.wait_until(done, timeout)[since:]


def analyse(
    contender: str,
    recorder: Recorder,
    since: int,
    started: float,
    first_chunk_delay: float,
    x: np.ndarray,
    underruns: int = -1,
) -> Run:
    """Times and gaps of the sound recorded from sample `since` on, for a request made at
    monotonic time `started`."""
    spans = aa.sound_spans(x, RATE, threshold=THRESHOLD)
    first, last = spans[0][0], spans[-1][1]
    first_at = recorder.arrival_time(since + first)
    last_at = recorder.arrival_time(since + last - 1)
    gaps = [n for _, n in aa.gaps(x[first:last], RATE, threshold=THRESHOLD) if n >= GAP_S * RATE]
    first_ms = (first_at - started) * 1000
    return Run(
        contender=contender,
        first_audio_ms=round(first_ms, 1),
        added_ms=round(first_ms - first_chunk_delay * 1000, 1),
        gaps=len(gaps),
        longest_gap_ms=round(max(gaps, default=0) / RATE * 1000, 1),
        underruns=underruns,
        total_ms=round((last_at - started) * 1000, 1),
    )


def summary(runs: list[Run]) -> dict[str, object]:
    """Median and p95 of each measure over a contender's runs."""
    out: dict[str, object] = {"contender": runs[0].contender, "runs": len(runs)}
    for key in ("first_audio_ms", "added_ms", "gaps", "longest_gap_ms", "underruns", "total_ms"):
        values = sorted(float(asdict(run)[key]) for run in runs)
        out[key] = {"median": statistics.median(values), "p95": percentile(values, 95)}
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return float(np.percentile(ordered, q, method="nearest"))
