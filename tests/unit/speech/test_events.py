from player.speech.events import LISTENER_QUEUE, Event, EventBus
from player.speech.heard import Track
from player.speech.utterance import Utterance


async def test_every_listener_gets_each_event_in_order():
    bus = EventBus()
    with bus.listen() as first, bus.listen() as second:
        bus.publish(Event("queued", "u1"))
        bus.publish(Event("started", "u1", first_audio_ms=120))
        for queue in (first, second):
            assert [queue.get_nowait().kind for _ in range(2)] == ["queued", "started"]


async def test_a_listener_that_does_not_read_loses_its_oldest_events_only():
    bus = EventBus()
    with bus.listen() as queue:
        for n in range(LISTENER_QUEUE + 5):
            bus.publish(Event("text", "u1", text=str(n)))
        assert bus.dropped == 5
        assert queue.qsize() == LISTENER_QUEUE
        assert queue.get_nowait().text == "5"


async def test_a_listener_that_left_gets_nothing_and_holds_nothing():
    bus = EventBus()
    with bus.listen() as queue:
        pass
    bus.publish(Event("queued", "u1"))
    assert queue.empty()


async def test_heard_text_keeps_stripped_chunks_apart():
    track = Track(Utterance(), start=100, written=1000)
    track.spoken = [(100, "Sure."), (400, "The museum opens "), (900, "at nine.")]
    assert track.heard(500) == (400, "Sure. The museum opens")
    assert track.finished_text(500) == "Sure."
