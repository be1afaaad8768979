"""IAM tokens that expire: fetched before the first call, renewed once half their
lifetime has passed, and at once when SpeechKit refuses one.

A renewal that fails keeps the token held until it expires and is retried with backoff;
the failure is logged once, then again only when it changes or every `LOG_EVERY_S`.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Protocol

from player.auth.credentials import Credentials
from player.errors import CredentialsError

_LOGGER = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
"""Seconds before the first retry of a failed renewal; it doubles per failure."""
MAX_BACKOFF_S = 60.0
"""Seconds: the longest wait between retries."""
MIN_RENEW_S = 1.0
"""Seconds: the least time between two renewals, so that a token the service refuses
as soon as it came, or one that comes already expired, cannot make us hammer the token
service."""
MAX_NAP_S = 60.0
"""Seconds the renewer sleeps at most before it looks at the wall clock again: the loop's
sleep stops while the machine is suspended, a token's expiry does not."""
LOG_EVERY_S = 600.0
"""Seconds between two log lines about the same renewal failure."""
WAIT_S = 15.0
"""Seconds a call waits for a token being fetched (the request's own bound is 10 s)."""


class Clock(Protocol):
    """Wall time and sleeping; tests pass one they move by hand."""

    def time(self) -> float:
        """Unix time, seconds."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Token:
    value: str
    obtained_at: float
    """Unix time it came, seconds."""
    expires_at: float
    """Unix time it stops being accepted, seconds."""

    @property
    def renew_at(self) -> float:
        """Half way through its life: early enough to ride out a token service outage
        as long again, late enough to ask rarely (every 6 h for a 12 h token)."""
        return self.obtained_at + (self.expires_at - self.obtained_at) / 2


def backoff(failures: int, rng: random.Random) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row (>= 1)."""
    bound = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1))
    # Jittered, so that daemons that lost the same service do not come back in step.
    return rng.uniform(bound / 2, bound)


class RenewingCredentials(Credentials):
    """Bearer tokens from a token service, renewed in the background by `run`.

    Subclasses say how a token is fetched (`_fetch`) and what from (`_source`, for the
    log). Only the event loop calls it.
    """

    _source: str
    """What the tokens are for or come from, for the log: no secret."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        wait_s: float = WAIT_S,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._wait_s = wait_s
        self._token: Token | None = None
        self._refused: Token | None = None
        """The token SpeechKit refused, until a new one comes."""
        self._failure: CredentialsError | None = None
        self._failures = 0
        self._next_at = -math.inf
        """Unix time of the next renewal (or retry)."""
        self._last_attempt = -math.inf
        self._logged: tuple[str, float] | None = None
        """The last failure logged, and when."""
        self._attempt: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._recent: collections.deque[str] = collections.deque(maxlen=4)

    @abc.abstractmethod
    async def _fetch(self) -> tuple[str, float]:
        """A new token and its expiry (Unix time). Raises CredentialsError."""

    # --- what calls use ---------------------------------------------------------------

    async def authorization(self) -> str:
        token = self._usable()
        if token is None or token is self._refused:
            now = self._clock.time()
            if self._failure is None or now >= self._next_at:
                if token is not None and 0 < self._next_at - now <= self._wait_s:
                    await self._clock.sleep(self._next_at - now)  # the renewal's floor
                await self._fetched()
            token = self._usable()
        if token is None:
            failure = self._failure
            if failure is None:
                raise CredentialsError(f"no IAM token ({self._source}) within {self._wait_s:g} s")
            raise CredentialsError(str(failure), unreachable=failure.unreachable)
        return f"Bearer {token.value}"

    def rejected(self, authorization: str) -> bool:
        token = self._token
        if token is None:
            return False
        if authorization != f"Bearer {token.value}":
            return True  # renewed since that call began
        if token is not self._refused:
            _LOGGER.info("SpeechKit refused the IAM token (%s); renewing it", self._source)
        self._refused = token
        at = max(self._clock.time(), self._last_attempt + MIN_RENEW_S)
        self._next_at = min(self._next_at, at)
        self._wake.set()
        return True

    def expires_at(self) -> float | None:
        return self._token.expires_at if self._token is not None else None

    def scrub(self, text: str) -> str:
        for value in self._recent:
            text = text.replace(value, "<secret>")
        return text

    # --- renewing -----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                wait = self._next_at - self._clock.time()
                if wait <= 0:
                    await self._fetched()
                    continue
                await self._nap(min(wait, MAX_NAP_S))
        finally:
            if self._attempt is not None:
                self._attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._attempt

    async def _nap(self, seconds: float) -> None:
        """Sleep `seconds`, or until `rejected` asks for a renewal now."""
        sleep = asyncio.ensure_future(self._clock.sleep(seconds))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleep, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            wake.cancel()

    async def _fetched(self) -> None:
        """One attempt, shared by all who need it at the same time (the renewer and the
        calls waiting for a token); returns when it is over, or after `wait_s`."""
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.ensure_future(self._renew())
        # Not shield(): a caller that gives up must not cancel the others' attempt, and
        # an attempt cancelled by `run` ending (the credentials replaced by a reload)
        # must not reach a call still waiting for it as a cancellation of its own.
        await asyncio.wait({self._attempt}, timeout=self._wait_s)

    async def _renew(self) -> None:
        self._last_attempt = self._clock.time()
        try:
            value, expires_at = await self._fetch()
        except CredentialsError as err:
            self._failed(err)
            return
        except Exception as err:
            # Its message is not ours to vouch for: it may quote what was sent.
            _LOGGER.debug("renewing the IAM token (%s) failed", self._source, exc_info=True)
            self._failed(
                CredentialsError(
                    f"renewing the IAM token ({self._source}) failed: {type(err).__name__}"
                )
            )
            return
        now = self._clock.time()
        token = Token(value, now, expires_at)
        self._token, self._refused, self._failure = token, None, None
        self._recent.append(value)
        self._next_at = max(token.renew_at, now + MIN_RENEW_S)
        if self._failures:
            _LOGGER.info(
                "IAM token (%s) renewed after %d failed attempt(s)", self._source, self._failures
            )
        self._failures, self._logged = 0, None
        _LOGGER.debug(
            "new IAM token (%s), valid for %.0f s; renewing in %.0f s",
            self._source,
            expires_at - now,
            self._next_at - now,
        )

    def _failed(self, err: CredentialsError) -> None:
        now = self._clock.time()
        self._failure = err
        self._failures += 1
        delay = backoff(self._failures, self._rng)
        self._next_at = now + delay
        message = str(err)
        held = self._usable()
        kept = (
            f"; the current token stays in use until "
            f"{time.strftime('%H:%M:%S', time.localtime(held.expires_at))}"
            if held is not None
            else ""
        )
        logged = self._logged
        if logged is None or logged[0] != message or now - logged[1] >= LOG_EVERY_S:
            _LOGGER.warning("%s (retrying in %.0f s%s)", message, delay, kept)
            self._logged = (message, now)
        else:
            _LOGGER.debug("%s (attempt %d; retrying in %.0f s)", message, self._failures, delay)

    def _usable(self) -> Token | None:
        token = self._token
        if token is None or self._clock.time() >= token.expires_at:
            return None
        return token
