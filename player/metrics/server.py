"""`[metrics] listen`: the daemon's series in a private registry, served over HTTP by
prometheus_client's own server on a thread of its own.

The first-audio histogram is fed from the event bus (each `started` event carries its
latency); everything else is read from the daemon when scraped (`collector`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from player import __version__
from player.errors import DaemonError
from player.metrics import series
from player.metrics.collector import DaemonCollector
from player.metrics.reachability import Reachability
from player.speech.playback import Playback

_LOGGER = logging.getLogger(__name__)

FIRST_AUDIO_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds: fine where a healthy service answers (100 to 300 ms), coarse up to the
default first_audio_timeout_s."""
STOP_TIMEOUT = 2.0
"""Seconds to wait for the HTTP thread on stopping."""


class Metrics:
    """The series of one daemon; `serve` listens, `run` feeds the histogram, `aclose`
    stops listening."""

    def __init__(
        self,
        playback: Playback,
        channel: grpc.aio.Channel | None,
        token_expiry: Callable[[], float | None],
    ) -> None:
        """``channel``: to the SpeechKit endpoint, None when only the local synthesizer
        speaks. ``token_expiry``: Unix time the credential expires, None if it does not;
        called on the event loop at each scrape."""
        self._playback = playback
        self._reachability = Reachability(channel) if channel is not None else None
        self._token_expiry = token_expiry
        self.registry = CollectorRegistry()
        self._first_audio = Histogram(
            series.PREFIX + "first_audio_seconds",
            "From an utterance's request to its first sample leaving the audio callback.",
            buckets=FIRST_AUDIO_BUCKETS,
            registry=self.registry,
        )
        self._http: tuple[WSGIServer, threading.Thread] | None = None

    def _cloud_reachable(self) -> bool | None:
        return self._reachability.reachable if self._reachability is not None else None

    def _read(self) -> series.Reading:
        return series.read(self._playback, self._cloud_reachable, self._token_expiry)

    def serve(self, listen: str) -> None:
        """Listen on ``listen`` ("host:port"); DaemonError if the address cannot be had.
        Call it on the event loop that runs the daemon."""
        loop = asyncio.get_running_loop()
        self.registry.register(DaemonCollector(loop, self._read, __version__))
        host, _, port = listen.rpartition(":")
        try:
            self._http = start_http_server(int(port), host.strip("[]"), registry=self.registry)
        except OSError as err:
            why = err.strerror or str(err)
            raise DaemonError(
                f'[metrics] listen = "{listen}": cannot listen there: {why}'
            ) from None
        _LOGGER.info("serving Prometheus metrics at http://%s/metrics", listen)

    @property
    def port(self) -> int | None:
        """The port listened on (the one chosen, for port 0); None before `serve`."""
        return self._http[0].server_port if self._http is not None else None

    async def run(self) -> None:
        """Until cancelled: the histogram from the event bus, and the endpoint's
        reachability from its channel."""
        async with asyncio.TaskGroup() as group:
            if self._reachability is not None:
                group.create_task(self._reachability.run())
            group.create_task(self._observe())

    async def _observe(self) -> None:
        with self._playback.events.listen() as events:
            while True:
                event = await events.get()
                if event.kind == "started" and event.first_audio_ms is not None:
                    self._first_audio.observe(event.first_audio_ms / 1000)

    async def aclose(self) -> None:
        """Stop listening; a scrape under way may still finish."""
        if self._http is None:
            return
        server, thread = self._http
        self._http = None
        # `shutdown` waits for the serving loop's next poll (up to half a second).
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        await asyncio.to_thread(thread.join, STOP_TIMEOUT)
