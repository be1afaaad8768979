"""The jitter buffer's estimate, fed synthetic arrival schedules: no clock, no stream."""

import random

import pytest

from player.audio.jitter import (
    REFILL_SILENCE_S,
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
) -> tuple[float, int]:
    """``chunks`` chunks from a source producing ``realtime`` x real time from ``origin``
    (s), each sent when its last frame is produced, plus its ``lateness`` (s), never
    before the one before. Returns the last arrival time and the frames fed."""
    produced, previous = 0, 0.0
    for i in range(chunks):
        produced += CHUNKS[i % len(CHUNKS)]
        at = origin + produced / RATE / realtime + (lateness[i] if lateness else 0.0)
        previous = max(previous, at)
        est.arrived(previous, CHUNKS[i % len(CHUNKS)])
    return previous, produced


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


def test_a_refill_after_a_dry_spell_is_bounded_by_the_silence_it_costs():
    rng = random.Random(2)
    est = estimate()
    est.arrived(0.0, 2400)  # the first chunk
    _, before = feed(est, 1.2, 20, [0.03 * i for i in range(20)], origin=0.05)
    assert est.need() > BURSTY  # bursty, and asking for more than BURSTY
    est.ran_dry()
    last, after = feed(est, 1.2, 40, [rng.uniform(0, 0.16) for _ in range(40)], origin=1.0)
    assert est.bursty  # just as bursty after it
    # What the source makes in REFILL_SILENCE_S at the rate it kept up since its first
    # chunk, not 1.5x the whole bursty amount: at about real time, 150 ms.
    kept_up_per_audio_s = last / ((before + after) / RATE)
    assert est.need() == pytest.approx(REFILL_SILENCE_S / kept_up_per_audio_s * RATE, abs=2)
    assert est.need() < BURSTY


def test_refills_do_not_grow_with_each_dry_spell():
    est = estimate()
    feed(est, 1.2, 20, [0.03 * i for i in range(20)])
    needs = []
    for spell in range(4):
        est.ran_dry()
        feed(est, 1.2, 20, [0.03 * i for i in range(20)], origin=1.0 + spell)
        needs.append(est.need())
    assert min(needs) >= FLOOR
    assert max(needs) < BURSTY


def test_a_refill_from_a_steady_source_is_the_floor():
    est = estimate()
    feed(est, 5.0, 4)
    est.ran_dry()
    feed(est, 5.0, 8, origin=0.5)
    assert est.need() == FLOOR


def test_after_a_dry_spell_the_arrivals_that_follow_are_judged_afresh():
    est = estimate()
    feed(est, 1.2, 20, [0.03 * i for i in range(20)])  # bursty, then the input pauses
    assert est.bursty
    est.ran_dry()
    for _ in range(5):
        est.arrived(10.0, 4800)  # the next sentence, in one burst
    assert not est.bursty
    assert est.need() == FLOOR


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


def test_a_burst_after_a_slow_first_chunk_is_not_taken_for_a_fast_source():
    est = estimate()
    est.begin(0.0)
    for size in (3500, 1400, 2200, 1600):  # 181 ms, all let go at once after 365 ms
        est.arrived(0.365, size)
    assert not est.bursty  # nothing to judge the spread on yet
    # A burst says its chunks were held back, not that the source is fast: until the
    # arrivals show a rate, the source may need its first-chunk delay again.
    assert est.need() == pytest.approx(0.365 * RATE, abs=1)


def test_two_chunks_that_came_early_are_not_a_rate():
    est = estimate()
    est.begin(0.0)
    est.arrived(0.200, 1600)  # 33 ms, as soon as it could go
    est.arrived(0.216, 4800)  # 100 ms, due at 0.31 but 94 ms early
    # One interval would make a 6x source of it, that wins its first-chunk delay back;
    # the time since the request says 1.6x, that cannot.
    assert est.need() == pytest.approx(0.200 * RATE, abs=1)
    est.arrived(0.342, 3200)  # the third is on time: now the spread shows
    assert est.bursty
    assert est.need() >= BURSTY
