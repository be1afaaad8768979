"""The jitter buffer's estimate, fed synthetic arrival schedules: no clock, no stream."""

import random

import pytest

from player.audio.jitter import (
    REFILL_GROWTH,
    SHORT_SENTENCE_S,
    SPREAD_FACTOR,
    WAIT_FACTOR,
    JitterEstimate,
)

RATE = 48000
FLOOR, BURSTY, MOST = 4800, 19200, 48000  # 100 ms, 400 ms, 1 s
CHUNKS = (2400, 1500, 1)
"""Frames per chunk, cycled: 50 ms, 31 ms and a sliver, like the tone server's."""


def estimate() -> JitterEstimate:
    return JitterEstimate(RATE, FLOOR, BURSTY, MOST)


def feed(
    est: JitterEstimate,
    realtime: float,
    chunks: int,
    lateness: list[float] | None = None,
    origin: float = 0.0,
) -> None:
    """``chunks`` chunks from a source producing ``realtime`` x real time from ``origin``
    (s), each sent when its last frame is produced, plus its ``lateness`` (s), never
    before the one before."""
    produced, previous = 0, 0.0
    for i in range(chunks):
        produced += CHUNKS[i % len(CHUNKS)]
        at = origin + produced / RATE / realtime + (lateness[i] if lateness else 0.0)
        previous = max(previous, at)
        est.arrived(previous, CHUNKS[i % len(CHUNKS)])


def test_a_fast_steady_source_needs_only_the_floor():
    est = estimate()
    feed(est, 5.0, 4)  # 131 ms of audio within 27 ms
    assert not est.bursty
    assert est.need() == FLOOR
    assert est.wait_limit() == pytest.approx(WAIT_FACTOR * FLOOR / RATE)


def test_a_steady_source_at_just_over_real_time_needs_only_the_floor():
    est = estimate()
    feed(est, 1.2, 30)
    assert not est.bursty
    assert est.need() == FLOOR


def test_a_slow_first_chunk_from_a_source_just_over_real_time_asks_for_its_repeat():
    est = estimate()
    est.begin(0.0)
    feed(est, 1.2, 4, origin=0.2)  # 200 ms to start, then 1.2x real time
    assert not est.bursty
    first_delay = 0.2 + CHUNKS[0] / RATE / 1.2
    won_back = SHORT_SENTENCE_S * (1 - 1 / 1.2)
    assert est.need() == pytest.approx((first_delay - won_back) * RATE, abs=2)


def test_a_fast_source_wins_its_first_chunk_delay_back():
    est = estimate()
    est.begin(0.0)
    feed(est, 5.0, 4, origin=0.2)
    assert est.need() == FLOOR


def test_a_steady_source_with_sparse_big_chunks_needs_their_cadence():
    est = JitterEstimate(RATE, FLOOR, BURSTY, MOST)
    for i in range(5):  # 300 ms chunks, each produced at 1.5x real time
        est.arrived((i + 1) * 0.2, 14400)
    assert not est.bursty
    # Right after one chunk, the next is 200 ms away: less would run dry every time.
    assert est.need() == pytest.approx(0.2 * RATE, abs=1)


def test_jitter_around_the_schedule_holds_the_bursty_amount_at_least():
    rng = random.Random(1)
    est = estimate()
    feed(est, 1.2, 12, [rng.uniform(0, 0.16) for _ in range(12)])
    assert est.bursty
    assert est.need() >= BURSTY
    assert est.need() >= round(SPREAD_FACTOR * est.spread * RATE)
    assert est.wait_limit() == pytest.approx(WAIT_FACTOR * FLOOR / RATE)


def test_delays_that_pile_up_ask_for_more_than_the_bursty_amount():
    est = estimate()
    feed(est, 1.2, 20, [0.03 * i for i in range(20)])  # 30 ms later each chunk
    assert est.bursty
    assert est.need() > BURSTY


def test_each_dry_spell_grows_the_refill_up_to_the_most():
    est = estimate()
    feed(est, 5.0, 4)
    est.ran_dry()
    assert est.need() == round(FLOOR * REFILL_GROWTH)
    est.ran_dry()
    assert est.need() == round(FLOOR * REFILL_GROWTH**2)
    for _ in range(20):
        est.ran_dry()
    assert est.need() == MOST


def test_after_a_dry_spell_the_arrivals_that_follow_are_judged_afresh():
    est = estimate()
    feed(est, 1.2, 20, [0.03 * i for i in range(20)])  # bursty, then the input pauses
    assert est.bursty
    est.ran_dry()
    for _ in range(5):
        est.arrived(10.0, 4800)  # the next sentence, in one burst
    assert not est.bursty
    assert est.need() == round(FLOOR * REFILL_GROWTH)


def test_a_new_utterance_starts_from_a_clean_slate():
    est = estimate()
    feed(est, 1.2, 20, [0.03 * i for i in range(20)])
    est.ran_dry()
    est.begin(0.0)
    assert est.dry_spells == 0
    feed(est, 5.0, 4)
    assert est.need() == FLOOR


def test_one_burst_is_steady():
    est = estimate()
    for _ in range(5):
        est.arrived(1.0, 4800)  # a whole sentence at once, as a local voice sends it
    assert not est.bursty
    assert est.need() == FLOOR
