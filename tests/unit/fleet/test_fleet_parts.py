"""The pieces of the fleet that need no broker: backoff, the status that counts as a
change, and how often a bad message is logged."""

from __future__ import annotations

import logging

import pytest

from player.fleet.fleet import Complaints
from player.fleet.link import Backoff
from player.fleet.publisher import steady


def test_backoff_doubles_to_its_ceiling_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 30.0)
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    for ceiling in ceilings:
        assert ceiling / 2 <= backoff.delay() <= ceiling
    backoff.reset()
    assert backoff.delay() <= 0.5


def test_the_steady_state_leaves_out_what_moves_with_every_block() -> None:
    status: dict[str, object] = {
        "state": "speaking",
        "queue_length": 1,
        "counters": {"utterances": 3, "frames_played": 48000},
        "callback_us": {"calls": 10},
        "chunk_latency_ms": {"chunks": 2},
    }
    moved: dict[str, object] = {
        **status,
        "counters": {"utterances": 3, "frames_played": 96000},
        "callback_us": {"calls": 20},
        "chunk_latency_ms": {"chunks": 4},
    }
    assert steady(status) == steady(moved)
    assert steady(status) == {"state": "speaking", "queue_length": 1, "counters": {"utterances": 3}}
    assert steady({**status, "queue_length": 2}) != steady(status)


def test_a_bad_message_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    complain = Complaints(interval=60.0)
    with caplog.at_level(logging.WARNING, "player.fleet.fleet"):
        complain("p/k1/say", "payload is not JSON", now=1000.0)
        complain("p/k1/say", "payload is not JSON", now=1001.0)
        complain("p/k1/say", '"text" must be a string', now=1059.0)
        complain("p/all/say", "payload is not UTF-8 text", now=1061.0)
    assert [r.getMessage() for r in caplog.records] == [
        "ignored a message on p/k1/say: payload is not JSON",
        "ignored a message on p/all/say: payload is not UTF-8 text (2 more bad message(s) "
        "before it)",
    ]
    assert complain.count == 4
