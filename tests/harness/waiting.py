"""A bounded wait on a condition the test cannot await (state another thread or the
watcher changes): polled every 10 ms, TimeoutError after `within` seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.01


async def until(condition: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(POLL_S)
