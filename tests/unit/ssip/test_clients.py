import asyncio

from player.speech.events import Event, EventBus
from player.speech.utterance import Utterance
from player.ssip.choices import NOTIFICATIONS, Choices
from player.ssip.clients import Clients

TIMEOUT = 5.0


class Peer:
    def __init__(self, notifications=NOTIFICATIONS) -> None:
        self.id = 0
        self.choices = Choices(notifications=frozenset(notifications))
        self.sent: list[bytes] = []
        self.arrived = asyncio.Event()

    def send_event(self, data: bytes) -> None:
        self.sent.append(data)
        self.arrived.set()


async def relayed(bus: EventBus, peer: Peer, events: list[Event], count: int) -> list[bytes]:
    for event in events:
        bus.publish(event)
    async with asyncio.timeout(TIMEOUT):
        while len(peer.sent) < count:
            peer.arrived.clear()
            await peer.arrived.wait()
    return peer.sent


async def test_a_message_s_events_follow_its_utterance_s():
    clients, bus, peer = Clients(), EventBus(), Peer()
    relay = asyncio.create_task(clients.relay(bus))
    await asyncio.sleep(0)  # listening
    try:
        clients.join(peer)
        utterance = Utterance()
        message = clients.sent(peer, utterance)
        assert message == int(utterance.id[1:])
        kinds = ["queued", "started", "text", "interrupted", "started", "finished"]
        sent = await relayed(bus, peer, [Event(k, utterance.id) for k in kinds], 4)  # type: ignore[arg-type]
        assert [line.split(b"\r\n")[-2] for line in sent] == [
            b"701 BEGIN", b"704 PAUSED", b"705 RESUMED", b"702 END",
        ]  # fmt: skip
        assert sent[0] == f"701-{message}\r\n701-{peer.id}\r\n701 BEGIN\r\n".encode()
        assert clients.message(utterance.id) is None  # forgotten once it ended
    finally:
        relay.cancel()


async def test_only_the_kinds_asked_for_when_it_was_sent_and_nothing_for_a_gone_client():
    clients, bus = Clients(), EventBus()
    quiet, gone = Peer(notifications={"end"}), Peer()
    relay = asyncio.create_task(clients.relay(bus))
    await asyncio.sleep(0)
    try:
        clients.join(quiet)
        clients.join(gone)
        mine, theirs, probe = Utterance(), Utterance(), Utterance()
        clients.sent(quiet, mine)
        clients.sent(gone, theirs)
        quiet.choices.notifications = frozenset({"begin", "end"})  # too late for `mine`
        probe_id = clients.sent(quiet, probe)
        clients.leave(gone)
        events = [
            Event("started", mine.id),
            Event("cancelled", theirs.id),
            Event("error", mine.id),
            Event("finished", probe.id),  # relayed after the others, in order
        ]
        sent = await relayed(bus, quiet, events, 1)
        assert sent == [f"702-{probe_id}\r\n702-{quiet.id}\r\n702 END\r\n".encode()]
        assert gone.sent == []
        assert clients.of(quiet.id) == []
        assert clients.of(gone.id) == []
    finally:
        relay.cancel()


async def test_marks_are_reached_once_the_text_before_them_has_started_and_never_before():
    clients, bus, peer = Clients(), EventBus(), Peer()
    relay = asyncio.create_task(clients.relay(bus))
    await asyncio.sleep(0)
    try:
        clients.join(peer)
        utterance = Utterance()
        clients.sent(peer, utterance, [(0, "start"), (5, "m1"), (6, "m2"), (14, "end")])
        events = [
            Event("started", utterance.id),
            Event("text", utterance.id, text="Hello "),  # chars 0-4 start: "start"
            Event("text", utterance.id, text="big "),  # 5-7 start: "m1", not "m2"
            Event("text", utterance.id, text="world. "),  # 8-13: "m2"
            Event("finished", utterance.id),  # the rest, then END
        ]
        sent = await relayed(bus, peer, events, 6)
        names = [line.split(b"\r\n")[-3 if b"INDEX" in line else -2] for line in sent]
        assert names == [b"701 BEGIN", b"700-start", b"700-m1", b"700-m2", b"700-end", b"702 END"]
    finally:
        relay.cancel()
