"""The daemon's series for the HTTP server's thread, read on the event loop.

What the daemon counts belongs to the event loop (and the credentials say only it may
call them), so a scrape asks the loop for a `Reading` and waits, bounded, for it. A
loop that does not answer in time is a daemon in trouble: the scrape then has only the
build info and the series kept thread-safe by prometheus_client, and the log says why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from player.metrics.series import Reading, build_info, families

_LOGGER = logging.getLogger(__name__)

READ_TIMEOUT = 2.0
"""Seconds a scrape waits for the event loop; well inside Prometheus' default 10 s
scrape timeout."""


class DaemonCollector:
    """A prometheus_client collector; `collect` runs in the HTTP server's threads."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, read: Callable[[], Reading], version: str
    ) -> None:
        self._loop = loop
        self._read = read
        self._version = version

    def collect(self) -> Iterator[Metric]:
        yield build_info(self._version)
        reading = self._reading()
        if reading is not None:
            yield from families(reading)

    def _reading(self) -> Reading | None:
        future: concurrent.futures.Future[Reading] = concurrent.futures.Future()

        def take() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the scrape gave up waiting
            try:
                future.set_result(self._read())
            except Exception as err:
                future.set_exception(err)

        try:
            self._loop.call_soon_threadsafe(take)
        except RuntimeError:
            return None  # the loop is closed: the daemon is stopping
        try:
            return future.result(READ_TIMEOUT)
        except TimeoutError:
            future.cancel()
            _LOGGER.warning(
                "metrics: the event loop did not answer within %.0f s; served only the "
                "build info and the first-audio histogram",
                READ_TIMEOUT,
            )
            return None
        except Exception:
            # Never out to the HTTP server, which would print a traceback per scrape.
            _LOGGER.exception("metrics: reading the daemon's state failed")
            return None
