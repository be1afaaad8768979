"""player.auth.current: a reload swaps the credentials whose renewal runs."""

from __future__ import annotations

import asyncio

from player.auth.credentials import Credentials
from player.auth.current import CurrentCredentials

TIMEOUT = 5.0


class _Renewing(Credentials):
    """Records whether its renewal runs."""

    kind = "test"

    def __init__(self, expires: float) -> None:
        self.running = asyncio.Event()
        self.ended = asyncio.Event()
        self._expires = expires

    async def authorization(self) -> str:
        return "Bearer test"

    def scrub(self, text: str) -> str:
        return text

    def expires_at(self) -> float | None:
        return self._expires

    async def run(self) -> None:
        self.running.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.ended.set()


async def test_replacing_ends_the_old_renewal_and_starts_the_new_one() -> None:
    old, new = _Renewing(100.0), _Renewing(200.0)
    current = CurrentCredentials(old)
    task = asyncio.create_task(current.run())
    try:
        await asyncio.wait_for(old.running.wait(), TIMEOUT)
        assert current.expires_at() == 100.0

        current.replace(new)

        await asyncio.wait_for(new.running.wait(), TIMEOUT)
        await asyncio.wait_for(old.ended.wait(), TIMEOUT)
        assert current.credentials is new
        assert current.expires_at() == 200.0
    finally:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert new.ended.is_set()


async def test_none_renews_nothing_until_credentials_come() -> None:
    current = CurrentCredentials(None)
    assert current.expires_at() is None
    task = asyncio.create_task(current.run())
    try:
        later = _Renewing(300.0)
        current.replace(later)
        await asyncio.wait_for(later.running.wait(), TIMEOUT)
    finally:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
