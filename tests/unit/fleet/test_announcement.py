"""A `say` payload parsed: what is taken, and the one line a bad one is refused with."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from player.errors import FleetError, PlayerError
from player.fleet.announcement import MAX_PAYLOAD, Announcement, SeenIds, parse

NOT_A_TIME = '"expires" must be ISO 8601 or Unix seconds'
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_only_text_is_required() -> None:
    assert parse(body(text="Hello")) == Announcement("Hello")


def test_every_field_is_taken_and_unknown_ones_are_ignored() -> None:
    got = parse(body(text="Hi", priority="important", id="a1", expires=NOON, colour="red"))
    assert got == Announcement("Hi", "important", "a1", NOON)


@pytest.mark.parametrize(
    ("expires", "when"),
    [
        ("2026-12-01T12:00:00Z", NOON),
        ("2026-12-01T12:00:00+00:00", NOON),
        ("2026-12-01T13:00:00+01:00", NOON),
        ("2026-12-01T12:00:00", NOON),  # no zone: UTC, not the kiosk's local time
        ("2026-12-01 12:00", NOON),
        (NOON, NOON),
        (int(NOON), NOON),
        (NOON + 0.5, NOON + 0.5),
    ],
)
def test_expires_is_iso_8601_or_unix_seconds(expires: object, when: float) -> None:
    assert parse(body(text="Hi", expires=expires)).expires == when


def test_an_announcement_expires_after_its_time_not_before() -> None:
    announcement = parse(body(text="Hi", expires="2026-12-01T12:00:00Z"))
    assert not announcement.expired(NOON - 1)
    assert not announcement.expired(NOON)
    assert announcement.expired(NOON + 1)
    assert not parse(body(text="Hi")).expired(1e12)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "payload is not JSON (Expecting value at character 0)"),
        (b"Hello there", "payload is not JSON"),
        (b'{"text": "a",', "payload is not JSON"),
        (b"\xff\xfe", "payload is not UTF-8 text"),
        (b'"just a string"', "expected a JSON object, found a string"),
        (b"[1]", "expected a JSON object, found an array"),
        (b"{}", '"text" must be a string, found none'),
        (body(text=5), '"text" must be a string, found a number'),
        (body(text=["a"]), '"text" must be a string, found an array'),
        (body(text="a", priority=1), '"priority" must be a string, found a number'),
        (body(text="a", id=7), '"id" must be a string of 1 to 256 characters'),
        (body(text="a", id=""), '"id" must be a string of 1 to 256 characters'),
        (body(text="a", id="x" * 257), '"id" must be a string of 1 to 256 characters'),
        (body(text="a", expires="tomorrow"), "\"expires\" is not an ISO 8601 time: 'tomorrow'"),
        (body(text="a", expires=True), f"{NOT_A_TIME}, found a boolean"),
        (body(text="a", expires={}), f"{NOT_A_TIME}, found an object"),
        (b'{"text": "a", "expires": Infinity}', '"expires" must be a finite number of seconds'),
    ],
)  # fmt: skip
def test_a_bad_payload_is_refused_in_one_line(payload: bytes, why: str) -> None:
    with pytest.raises(FleetError) as info:
        parse(payload)
    assert str(info.value).startswith(why)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, PlayerError)


def test_a_huge_payload_is_refused_unread_and_not_quoted() -> None:
    huge = body(text="x" * MAX_PAYLOAD)
    with pytest.raises(FleetError) as info:
        parse(huge)
    assert str(info.value) == f"payload of {len(huge)} bytes is over {MAX_PAYLOAD}"


def test_a_long_bad_time_is_quoted_cut_short() -> None:
    with pytest.raises(FleetError) as info:
        parse(body(text="a", expires="y" * 10_000))
    assert len(str(info.value)) < 100


def test_an_id_is_seen_once_until_it_is_forgotten() -> None:
    seen = SeenIds(capacity=3)
    assert seen.first_time("a")
    assert not seen.first_time("a")
    for ident in ("b", "c", "d"):
        assert seen.first_time(ident)
    assert len(seen) == 3
    # "a" was the oldest: forgotten; "b" was pushed out by "a" coming back.
    assert seen.first_time("a")
    assert not seen.first_time("d")
    assert seen.first_time("b")


def test_a_repeated_id_stays_remembered() -> None:
    seen = SeenIds(capacity=2)
    seen.first_time("a")
    seen.first_time("b")
    assert not seen.first_time("a")  # "a" is now the newest
    seen.first_time("c")  # pushes out "b"
    assert not seen.first_time("a")
    assert seen.first_time("b")
