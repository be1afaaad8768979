import numpy as np
import pytest

from player.audio.telemetry import RECENT_CALLBACKS, ChunkLatency, Telemetry
from tests.harness.fake_stream import make_output

MS = 1_000_000  # ns
RATE = 8000  # 80 frames = 10 ms


def callbacks(telemetry: Telemetry, reads: list[int], period_ms: int = 10) -> None:
    """One callback every ``period_ms`` from t=0, each reading the given frame count."""
    position = 0
    for i, read in enumerate(reads):
        telemetry.callback(i * period_ms * MS, i * period_ms * MS + 20_000, position, read)
        position += read


def test_no_rows_no_figures():
    assert Telemetry().chunk_latency(RATE) == ChunkLatency(0, 0.0, 0.0, 0.0)


def test_a_chunk_into_an_empty_ring_waits_for_the_next_callback():
    telemetry = Telemetry()
    telemetry.chunk(arrival_ns=-3 * MS, position=0, ahead=0)
    callbacks(telemetry, [80, 80, 0])
    latency = telemetry.chunk_latency(RATE)
    assert latency.chunks == 1
    assert latency.median_ms == pytest.approx(3.0)


def test_audio_queued_ahead_is_not_counted_as_added_latency():
    telemetry = Telemetry()
    # Arrives at 1 ms behind 80 queued frames (10 ms); read by the call at 20 ms.
    telemetry.chunk(arrival_ns=1 * MS, position=160, ahead=80)
    callbacks(telemetry, [80, 80, 80, 80, 0])
    assert telemetry.chunk_latency(RATE).median_ms == pytest.approx(19.0 - 10.0)


def test_the_prebuffer_wait_counts():
    telemetry = Telemetry()
    telemetry.chunk(arrival_ns=-1 * MS, position=0, ahead=0)
    # The gate stays shut for two calls (nothing read), then the call at 20 ms reads it.
    callbacks(telemetry, [0, 0, 80, 80, 0])
    assert telemetry.chunk_latency(RATE).median_ms == pytest.approx(21.0)


def test_unplayed_and_dropped_chunks_are_left_out():
    telemetry = Telemetry()
    telemetry.chunk(arrival_ns=0, position=0, ahead=0)
    telemetry.chunk(arrival_ns=0, position=100, ahead=0)  # dropped: the ring skipped it
    telemetry.chunk(arrival_ns=0, position=10_000, ahead=0)  # not played yet
    telemetry.callback(5 * MS, 5 * MS, 0, 80)
    telemetry.callback(15 * MS, 15 * MS, 500, 80)  # a stop moved the read position on
    telemetry.callback(25 * MS, 25 * MS, 580, 0)
    latency = telemetry.chunk_latency(RATE)
    assert latency.chunks == 1
    assert latency.median_ms == pytest.approx(5.0)


def test_old_callbacks_roll_off_without_confusing_the_match():
    telemetry = Telemetry()
    callbacks(telemetry, [80] * (RECENT_CALLBACKS + 10))
    arrival = (RECENT_CALLBACKS + 10) * 10 * MS - 2 * MS
    telemetry.chunk(arrival_ns=arrival, position=80 * (RECENT_CALLBACKS + 10), ahead=0)
    telemetry.callback(arrival + 2 * MS, arrival + 2 * MS, 80 * (RECENT_CALLBACKS + 10), 80)
    telemetry.callback(arrival + 12 * MS, arrival + 12 * MS, 80 * (RECENT_CALLBACKS + 11), 0)
    latency = telemetry.chunk_latency(RATE)
    assert latency.chunks == 1
    assert latency.median_ms == pytest.approx(2.0)


async def test_the_output_records_chunks_and_the_callback_reading_them():
    output, (stream,) = make_output(rate=RATE, prebuffer_ms=0)
    output.begin_utterance()
    await output.write(np.full(120, 0.5, dtype=np.float32), stall_timeout=1)
    await output.write(np.full(120, 0.5, dtype=np.float32), stall_timeout=1)
    for _ in range(4):
        stream.pull(80)
    latency = output.telemetry.chunk_latency(RATE)
    assert latency.chunks == 2
    # The second chunk sat behind the first's 15 ms, which is not the daemon's delay.
    assert latency.median_ms < 15.0
