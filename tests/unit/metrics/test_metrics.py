"""player.metrics against a real Playback (fake device and synthesis behind their real
interfaces), scraped over HTTP from the real listener."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from player import __version__
from player.errors import DaemonError, SynthesisError
from player.metrics import collector as collector_module
from player.metrics.collector import DaemonCollector
from player.metrics.reachability import Reachability
from player.metrics.series import Reading
from player.metrics.server import Metrics
from player.speech.playback import Playback
from player.speech.priority import Priority
from player.speech.utterance import Utterance
from player.synthesis.interface import CallResult, Piece, Sink, Spoken, VoiceChoice
from tests.harness.fake_stream import FakeStream, make_output
from tests.harness.metric_types import ALWAYS_SERVED
from tests.unit.speech.test_playback import FakeSynthesis, drain

TIMEOUT = 5.0
EXPIRY = 1_900_000_000.0
PLAYER = Path(__file__).resolve().parents[3] / "player"


def fetch(port: int, path: str = "/metrics") -> tuple[str, str]:
    """Content type and body of a GET, from a thread of its own."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as reply:
        return reply.headers["Content-Type"], reply.read().decode()


async def scrape(port: int) -> dict[str, list[Sample]]:
    """Each family's samples, by family name (counters without `_total`)."""
    content_type, body = await asyncio.to_thread(fetch, port)
    assert content_type.startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(body)}


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float | None:
    family = name.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    return next(
        (s.value for s in families.get(family, []) if s.name == name and s.labels == labels),
        None,
    )


async def until(check: Callable[[], Awaitable[bool]], within: float = TIMEOUT) -> None:
    """Polls `check` until it holds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


Served = tuple[Playback, FakeSynthesis, Metrics, FakeStream, int]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A running Playback and its metrics, listening on a free port."""
    output, (stream,) = make_output(prebuffer_ms=0)
    synthesis = FakeSynthesis()
    playback = Playback(output, synthesis)
    metrics = Metrics(playback, None, lambda: EXPIRY)
    metrics.serve("127.0.0.1:0")
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(playback.run()), group.create_task(metrics.run())]
        try:
            assert metrics.port is not None
            yield playback, synthesis, metrics, stream, metrics.port
        finally:
            for task in tasks:
                task.cancel()
            await metrics.aclose()


def speak(playback: Playback, text: str, priority: Priority = Priority.MESSAGE) -> Utterance:
    utterance = Utterance(priority=priority)
    utterance.feed(text)
    utterance.close()
    playback.submit(utterance)
    return utterance


async def test_a_scrape_counts_outcomes_by_priority_errors_by_code_and_first_audio(
    served: Served,
) -> None:
    playback, synthesis, _, stream, port = served
    texts = ["one two", "three four", "five", "six"]

    fine = speak(playback, texts[0])
    await asyncio.wait_for(drain(stream, fine.done), TIMEOUT)

    synthesis.fail_with = SynthesisError("the key was refused", grpc.StatusCode.UNAUTHENTICATED)
    broken = speak(playback, texts[1])
    with pytest.raises(SynthesisError):
        await asyncio.wait_for(broken.done, TIMEOUT)
    synthesis.fail_with = None

    # An open utterance keeps the player busy: a notification is dropped meanwhile.
    open_one = Utterance()
    playback.submit(open_one)
    open_one.feed(texts[2])
    dropped = speak(playback, texts[3], Priority.NOTIFICATION)
    assert await playback.cancel(open_one)

    async def histogram_moved() -> bool:
        families = await scrape(port)
        return value(families, "speechkit_player_first_audio_seconds_count") == 1

    await until(histogram_moved)
    families = await scrape(port)
    utterances = "speechkit_player_utterances_total"
    assert value(families, utterances, priority="message", outcome="finished") == 1
    assert value(families, utterances, priority="message", outcome="error") == 1
    assert value(families, utterances, priority="message", outcome="cancelled") == 1
    assert value(families, utterances, priority="notification", outcome="cancelled") == 1
    assert value(families, utterances, priority="important", outcome="finished") == 0
    errors = "speechkit_player_synthesis_errors_total"
    assert value(families, errors, code="UNAUTHENTICATED") == 1
    assert value(families, "speechkit_player_build_info", version=__version__) == 1
    assert value(families, "speechkit_player_token_expiry_timestamp_seconds") == EXPIRY
    assert value(families, "speechkit_player_device_up") == 1
    assert value(families, "speechkit_player_queue_length") == 0
    for name in ("underruns", "device_underruns", "fallbacks", "resumed_calls"):
        assert value(families, f"speechkit_player_{name}_total") is not None, name
    assert "speechkit_player_cloud_reachable" not in families  # no endpoint to reach

    labels = {v for samples in families.values() for s in samples for v in s.labels.values()}
    ids = {u.id for u in (fine, broken, open_one, dropped)}
    assert not labels & ids
    assert not [v for v in labels if any(word in v for t in texts for word in t.split())]


class SpeakingSynthesis(FakeSynthesis):
    """FakeSynthesis that also says which text each piece's audio speaks."""

    def __init__(self) -> None:
        super().__init__()
        self.spoken = 0

    async def synthesize(
        self, pieces: AsyncIterator[Piece], sink: Sink, choice: VoiceChoice | None = None
    ) -> CallResult:
        frames = 0
        async for piece in pieces:
            await sink.audio(np.full(80, 0.25, dtype=np.float32))
            sink.spoken(Spoken(str(piece), frames // 8))
            self.spoken += 1
            frames += 80
        return CallResult(frames, "", 0.0)


async def test_an_interrupted_message_counts_as_such_and_again_when_it_ends() -> None:
    output, (stream,) = make_output(prebuffer_ms=0)
    synthesis = SpeakingSynthesis()
    playback = Playback(output, synthesis)
    metrics = Metrics(playback, None, lambda: None)
    metrics.serve("127.0.0.1:0")
    assert metrics.port is not None
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(playback.run()), group.create_task(metrics.run())]
        try:
            await interrupt_a_message(playback, synthesis, stream, metrics.port)
        finally:
            for task in tasks:
                task.cancel()
            await metrics.aclose()


async def interrupt_a_message(
    playback: Playback, synthesis: SpeakingSynthesis, stream: FakeStream, port: int
) -> None:
    message = Utterance()
    playback.submit(message)
    message.feed("first words ")

    async def speaking() -> bool:
        return synthesis.spoken > 0

    await until(speaking)
    important = speak(playback, "urgent", Priority.IMPORTANT)
    message.close()
    # The important one plays first; the message starts again after it.
    await asyncio.wait_for(drain(stream, message.done), TIMEOUT)
    assert important.done.done()

    families = await scrape(port)
    utterances = "speechkit_player_utterances_total"
    assert value(families, utterances, priority="message", outcome="interrupted") == 1
    assert value(families, utterances, priority="message", outcome="finished") == 1
    assert value(families, utterances, priority="important", outcome="finished") == 1


async def test_the_series_have_their_prometheus_types(
    served: Served,
) -> None:
    _, body = await asyncio.to_thread(fetch, served[-1])
    types = {f.name: f.type for f in text_string_to_metric_families(body)}
    assert types == {
        **ALWAYS_SERVED,
        "speechkit_player_token_expiry_timestamp_seconds": "gauge",
        # prometheus_client's own: when the histogram was created.
        "speechkit_player_first_audio_seconds_created": "gauge",
    }


async def test_a_taken_address_is_one_line_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        metrics = Metrics(Playback(make_output()[0], FakeSynthesis()), None, lambda: None)
        with pytest.raises(DaemonError) as info:
            metrics.serve(listen)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f'[metrics] listen = "{listen}": cannot listen there')
    assert metrics.port is None
    await metrics.aclose()  # nothing to stop


def reading() -> Reading:
    return Reading({}, {}, {}, 0, 0, 0, 0, 0, True, None, None)


def test_a_loop_that_does_not_answer_leaves_only_the_build_info(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(collector_module, "READ_TIMEOUT", 0.05)
    loop = asyncio.new_event_loop()  # never run: nothing scheduled on it happens
    try:
        names = [m.name for m in DaemonCollector(loop, reading, "9.9").collect()]
    finally:
        loop.close()
    assert names == ["speechkit_player_build_info"]
    assert "did not answer" in caplog.text


def test_a_closed_loop_or_a_failing_read_never_reaches_the_http_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    assert [m.name for m in DaemonCollector(loop, reading, "9.9").collect()] == [
        "speechkit_player_build_info"
    ]

    def broken() -> Reading:
        raise ValueError("a bug")

    async def scrape_from_a_thread() -> list[str]:
        collector = DaemonCollector(asyncio.get_running_loop(), broken, "9.9")
        return await asyncio.to_thread(lambda: [m.name for m in collector.collect()])

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(scrape_from_a_thread()) == ["speechkit_player_build_info"]
    assert "reading the daemon's state failed" in caplog.text


async def test_reachability_follows_the_channel() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    try:
        for target, expected in ((port, True), (closed, False)):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{target}") as channel:
                reach = Reachability(channel)
                watching = asyncio.create_task(reach.run())
                try:
                    await asyncio.sleep(0)
                    assert reach.reachable is None  # no call, no verdict
                    channel.get_state(try_to_connect=True)

                    async def decided(r: Reachability = reach) -> bool:
                        return r.reachable is not None

                    await until(decided)
                    assert reach.reachable is expected, target
                finally:
                    watching.cancel()
                    await asyncio.wait([watching], timeout=TIMEOUT)
    finally:
        await server.stop(None)


def test_only_the_daemon_imports_the_metrics_layer() -> None:
    from tests.unit.test_layers import _imports

    importers = {
        str(path.relative_to(PLAYER))
        for path in PLAYER.rglob("*.py")
        if "metrics" not in path.relative_to(PLAYER).parts
        and any(t == "metrics" or t.startswith("metrics.") for t in _imports(path))
    }
    assert importers == {"daemon/serving.py"}
