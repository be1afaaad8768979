"""Blocking calls off the event loop, on threads that never hold up the exit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


async def in_thread(
    function: Callable[[], _T],
    timeout: float,  # noqa: ASYNC109 - the wait is bounded here, not by the caller
    name: str = "blocking call",
) -> _T:
    """`function()` on a thread of its own, waited for at most `timeout` seconds (then
    TimeoutError). A daemon thread, unlike the executor's, which `asyncio.run` waits
    for: a call that never returns (a hung sound server, a resolver or a token service
    that does not answer) cannot hold up the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def report(outcome: Callable[[], None]) -> None:
        # The loop is gone once its caller gave up on this call and finished.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome)

    def target() -> None:
        try:
            value = function()
        except BaseException as err:  # handed to the waiting coroutine, which raises it
            report(functools.partial(future.set_exception, err))
        else:
            report(lambda: future.set_result(value))

    threading.Thread(target=target, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout)
