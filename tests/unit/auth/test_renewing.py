"""player.auth.renewing: when tokens are renewed, what happens while renewal fails, and a
refused token renewed at once. Driven by a clock the test moves: nothing here sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import pytest

from player.auth.renewing import MAX_NAP_S, MIN_RENEW_S, RenewingCredentials
from player.errors import CredentialsError

TIMEOUT = 5.0
"""Bound on every wait; each step here is immediate."""
START = 1_800_000_000.0
LIFETIME = 100.0
"""Seconds each fake token lives: shorter than MAX_NAP_S * 2, so the renewer sleeps
straight to the half-life."""


class FakeClock:
    """Wall time that moves only when the test says; `sleep` waits for that."""

    def __init__(self) -> None:
        self.now = START
        self._sleeps: list[tuple[float, asyncio.Future[None]]] = []
        self._asleep: asyncio.Queue[float] = asyncio.Queue()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, future)
        self._sleeps.append(entry)
        self._asleep.put_nowait(self.now + seconds)
        try:
            await future
        finally:
            self._sleeps.remove(entry)

    async def next_sleep(self) -> float:
        """The time the next sleep started by the code under test ends at."""
        return await asyncio.wait_for(self._asleep.get(), TIMEOUT)

    def advance_to(self, when: float) -> None:
        self.now = when
        for deadline, future in self._sleeps:
            if deadline <= when and not future.done():
                future.set_result(None)


class FakeTokens(RenewingCredentials):
    kind = "test"
    _source = "test tokens"

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock, rng=random.Random(0))
        self._fake_clock = clock
        self.failure: CredentialsError | None = None
        self.fetched: asyncio.Queue[float] = asyncio.Queue()
        self.count = 0

    async def _fetch(self) -> tuple[str, float]:
        now = self._fake_clock.time()
        self.fetched.put_nowait(now)
        if self.failure is not None:
            raise self.failure
        self.count += 1
        return f"token-{self.count}", now + LIFETIME

    async def next_fetch(self) -> float:
        return await asyncio.wait_for(self.fetched.get(), TIMEOUT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tokens(clock: FakeClock) -> AsyncIterator[FakeTokens]:
    creds = FakeTokens(clock)
    task = asyncio.create_task(creds.run())
    yield creds
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_first_token_is_fetched_at_once_and_renewed_at_half_its_life(
    clock: FakeClock, tokens: FakeTokens
) -> None:
    assert await tokens.next_fetch() == START
    assert await tokens.authorization() == "Bearer token-1"
    assert tokens.expires_at() == START + LIFETIME

    # Asleep until exactly half way through the token's life, not a moment before.
    assert await clock.next_sleep() == START + LIFETIME / 2
    assert tokens.fetched.empty()
    clock.advance_to(START + LIFETIME / 2)
    assert await tokens.next_fetch() == START + LIFETIME / 2
    assert await tokens.authorization() == "Bearer token-2"
    assert await clock.next_sleep() == START + LIFETIME / 2 + LIFETIME / 2


async def test_a_long_life_is_slept_in_slices_that_look_at_the_wall_clock(
    clock: FakeClock,
) -> None:
    class LongTokens(FakeTokens):
        async def _fetch(self) -> tuple[str, float]:
            await super()._fetch()
            return "long", self._fake_clock.time() + 12 * 3600

    creds = LongTokens(clock)
    task = asyncio.create_task(creds.run())
    try:
        await creds.next_fetch()
        assert await clock.next_sleep() == START + MAX_NAP_S
        # The machine slept through the renewal time: it comes as soon as it wakes.
        clock.advance_to(START + 7 * 3600)
        assert await creds.next_fetch() == START + 7 * 3600
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failing_renewal_keeps_the_token_until_it_expires_and_logs_once(
    clock: FakeClock, tokens: FakeTokens, caplog: pytest.LogCaptureFixture
) -> None:
    await tokens.next_fetch()
    await clock.next_sleep()
    tokens.failure = CredentialsError("the token service said no")
    caplog.set_level(logging.WARNING, "player.auth.renewing")
    at = START + LIFETIME / 2
    for attempt in range(1, 5):
        clock.advance_to(at)
        assert await tokens.next_fetch() == at
        assert await tokens.authorization() == "Bearer token-1"  # still valid: kept
        retry = await clock.next_sleep()
        bound = 2.0 ** (attempt - 1)  # backoff doubles from 1 s, jittered in [bound/2, bound]
        assert bound / 2 <= retry - at <= bound
        at = retry
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("the token service said no (retrying in")

    clock.advance_to(START + LIFETIME + 0.5)  # expired, and the next retry not yet due
    with pytest.raises(CredentialsError, match=r"^the token service said no$"):
        await tokens.authorization()

    tokens.failure = None
    clock.advance_to(START + LIFETIME + 120)
    await tokens.next_fetch()
    assert await tokens.authorization() == "Bearer token-2"


async def test_a_refused_token_is_renewed_at_once(clock: FakeClock, tokens: FakeTokens) -> None:
    await tokens.next_fetch()
    await clock.next_sleep()
    clock.advance_to(START + 5)  # the renewer sleeps on: its time is START + 50

    assert tokens.rejected("Bearer token-1")
    assert await tokens.next_fetch() == START + 5
    assert await tokens.authorization() == "Bearer token-2"
    # A call that began with the old token is worth making again; no new renewal for it.
    assert tokens.rejected("Bearer token-1")
    assert tokens.fetched.empty()


async def test_a_token_refused_the_moment_it_came_is_renewed_a_second_later(
    clock: FakeClock, tokens: FakeTokens
) -> None:
    await tokens.next_fetch()
    await clock.next_sleep()

    assert tokens.rejected("Bearer token-1")

    assert await clock.next_sleep() == START + MIN_RENEW_S
    assert tokens.fetched.empty()
    clock.advance_to(START + MIN_RENEW_S)
    assert await tokens.next_fetch() == START + MIN_RENEW_S
    assert await tokens.authorization() == "Bearer token-2"


async def test_without_the_renewer_a_call_fetches_its_own_first_token(clock: FakeClock) -> None:
    creds = FakeTokens(clock)

    assert await creds.authorization() == "Bearer token-1"
    assert await creds.authorization() == "Bearer token-1"
    assert creds.count == 1


async def test_the_first_failure_reaches_the_caller_as_one_line(clock: FakeClock) -> None:
    creds = FakeTokens(clock)
    creds.failure = CredentialsError("cannot reach the IAM service at x: refused", unreachable=True)

    with pytest.raises(CredentialsError) as info:
        await creds.authorization()

    assert str(info.value) == "cannot reach the IAM service at x: refused"
    assert info.value.unreachable


async def test_scrub_hides_every_recent_token(clock: FakeClock, tokens: FakeTokens) -> None:
    await tokens.next_fetch()
    clock.advance_to(START + 5)
    tokens.rejected("Bearer token-1")
    await tokens.next_fetch()

    assert tokens.scrub("echo token-1 and token-2") == "echo <secret> and <secret>"


class HeldTokens(FakeTokens):
    """Tokens whose fetch waits until the test lets it go."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.release = asyncio.Event()

    async def _fetch(self) -> tuple[str, float]:
        self.fetched.put_nowait(self._fake_clock.time())
        await self.release.wait()
        return "held", self._fake_clock.time() + LIFETIME


async def test_a_call_waiting_when_the_renewer_stops_fails_in_one_line(clock: FakeClock) -> None:
    # A reload replaces the credentials: their renewer is cancelled mid-fetch while a
    # call waits for that fetch. The call is not being cancelled, so it must not be.
    creds = HeldTokens(clock)
    renewer = asyncio.create_task(creds.run())
    await creds.next_fetch()
    call = asyncio.create_task(creds.authorization())
    await asyncio.sleep(0)  # one turn: the call runs up to its wait for the fetch
    renewer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(renewer, TIMEOUT)

    with pytest.raises(CredentialsError, match=r"^no IAM token \(test tokens\)"):
        await asyncio.wait_for(call, TIMEOUT)
    assert not call.cancelled()


async def test_an_unforeseen_failure_of_a_fetch_is_a_credentials_error(clock: FakeClock) -> None:
    class Broken(FakeTokens):
        async def _fetch(self) -> tuple[str, float]:
            raise ValueError("Bearer secret-value")

    with pytest.raises(CredentialsError) as info:
        await Broken(clock).authorization()

    assert str(info.value) == "renewing the IAM token (test tokens) failed: ValueError"
