"""The SSIP front's clients and their messages: client ids, the messages each sent, and
the events the daemon's bus publishes turned into each client's 70x events.

A message's events follow its utterance's: BEGIN when its first sample leaves the output
callback (`started`), END when its last has (`finished`), CANCELED when stop, cancel,
the priority rules or a failure ended it, PAUSED when a more important message pushed it
aside to be spoken again later, and RESUMED when it starts again. An SSML message's
marks become INDEX MARKs once all of the text before them has been heard: when the text
after them starts to be (`text`, which comes as the service's chunks of text are
reached), or at its end; never before. A client is sent only the kinds it had asked for
when it sent the message. A client that went away keeps its messages: they play, and
their events go nowhere.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

from player.speech.events import Event, EventBus
from player.speech.utterance import Utterance
from player.ssip import replies
from player.ssip.choices import Choices
from player.ssip.voices import Mark, spoken_chars

_LOGGER = logging.getLogger(__name__)


class Peer(Protocol):
    """A connected client, as the front sees it."""

    id: int
    choices: Choices

    def send_event(self, data: bytes) -> None:
        """Queue an event for the client: written between replies, never inside one."""


@dataclass
class Message:
    """One message a client sent: the utterance that speaks it, and who hears of it."""

    id: int
    client: int
    utterance: Utterance
    notify: frozenset[str]
    """The event kinds its client had asked for when it sent it."""
    marks: list[Mark] = field(default_factory=list)
    """Its SSML marks not yet reached, in order."""
    paused: bool = False
    """Pushed aside by a more important message, to be spoken again."""
    heard: int = 0
    """Non-space characters of its text whose audio has started, in this run."""


@dataclass
class Clients:
    """Every SSIP client of the daemon, connected or gone, and their messages."""

    peers: dict[int, Peer] = field(default_factory=dict)
    """Connected clients by id."""
    paused_by: int | None = None
    """The client whose PAUSE holds the output (resumed when it goes away), if any."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _messages: dict[str, Message] = field(default_factory=dict)

    def join(self, peer: Peer) -> int:
        """A new connection's client id."""
        peer.id = next(self._ids)
        self.peers[peer.id] = peer
        return peer.id

    def leave(self, peer: Peer) -> bool:
        """It has gone; True if its PAUSE held the output (which is then to be resumed)."""
        self.peers.pop(peer.id, None)
        if self.paused_by != peer.id:
            return False
        self.paused_by = None
        return True

    def sent(self, peer: Peer, utterance: Utterance, marks: list[Mark] | None = None) -> int:
        """The message id of what ``peer`` sent (its utterance's number, so the ids in
        `speechkit-player events` and in SSIP's events match); ``marks``: its SSML marks."""
        message = _message(peer, utterance, marks)
        self._messages[utterance.id] = message
        return message.id

    def at_once(self, peer: Peer, utterance: Utterance) -> int:
        """The id of a message with nothing to play (punctuation alone, an unknown sound
        icon): it begins and ends at once, as speech-dispatcher's would."""
        message = _message(peer, utterance)
        self.notify(message, "begin")
        self.notify(message, "end")
        return message.id

    def of(self, client: int) -> list[Utterance]:
        """The utterances of one client's messages that have not ended."""
        return [m.utterance for m in self._messages.values() if m.client == client]

    def message(self, utterance_id: str) -> Message | None:
        return self._messages.get(utterance_id)

    def notify(self, message: Message, kind: str, mark: str | None = None) -> None:
        """Send ``kind`` to the message's client, if it asked for it and is still here."""
        peer = self.peers.get(message.client)
        if peer is not None and kind in message.notify:
            peer.send_event(replies.event(kind, message.id, message.client, mark))

    def _reach(self, message: Message, heard: float) -> None:
        """Index marks for every mark with no more than ``heard`` characters before it."""
        while message.marks and message.marks[0][0] <= heard:
            self.notify(message, "index_marks", message.marks.pop(0)[1])

    async def relay(self, events: EventBus) -> None:
        """For the daemon's life: the bus's events as the clients' SSIP events."""
        with events.listen() as queue:
            while True:
                self._relay(await queue.get())

    def _relay(self, event: Event) -> None:
        message = self._messages.get(event.utterance_id)
        if message is None:
            return
        match event.kind:
            case "started":
                kind = "resume" if message.paused else "begin"
                message.paused = False
            case "text":
                # Its chunk starts now: everything before it has been heard. A run
                # resumed from a cut sentence says it again; the marks already sent stay.
                self._reach(message, message.heard)
                message.heard += spoken_chars(event.text or "")
                return
            case "interrupted":
                kind, message.paused = "pause", True
                message.heard = 0
            case "finished":
                kind = "end"
                self._reach(message, math.inf)
                del self._messages[event.utterance_id]
            case "cancelled" | "error":
                kind = "cancel"
                del self._messages[event.utterance_id]
            case _:
                return
        self.notify(message, kind)


def _message(peer: Peer, utterance: Utterance, marks: list[Mark] | None = None) -> Message:
    """What ``peer`` sent, numbered as its utterance is (so the ids in `speechkit-player
    events` and in SSIP's events match), with the notifications it asks for now."""
    number = int(utterance.id.removeprefix("u"))
    return Message(number, peer.id, utterance, peer.choices.notifications, list(marks or ()))
