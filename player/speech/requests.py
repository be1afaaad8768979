"""The one way in for every front: the gRPC control API, MQTT announcements and SSIP
each turn their protocol into the requests here, so priorities, the phrase cache, the
fallback, metrics and events work for all of them alike.

A `Speaker` queues utterances and ends them; a `Saying` is one request whose text
streams in (a `say -`, an SSIP message, an LLM's answer), queued once its text has
something to speak.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from player.audio.ring import Frames
from player.config import StreamSettings, TextSettings
from player.errors import PriorityError, TextError
from player.speech.playback import Playback
from player.speech.priority import Priority
from player.speech.utterance import Origin, Utterance, worth_starting
from player.synthesis.interface import VoiceChoice

_LOGGER = logging.getLogger(__name__)

__all__ = ["Origin", "Saying", "Speaker", "VoiceChoice", "priority_named"]

Announce = Callable[[Utterance], Awaitable[None]]
"""Told of a request's utterance before it is queued (the gRPC front sends its id)."""


def priority_named(name: str) -> Priority:
    """speech-dispatcher's priority of that name; "" is "message". Raises PriorityError
    naming the five."""
    if not name:
        return Priority.MESSAGE
    try:
        return Priority(name)
    except ValueError:
        names = ", ".join(p.value for p in Priority)
        raise PriorityError(f"unknown priority {name!r}: use one of {names}") from None


class Speaker:
    """What every front may ask of the daemon's playback."""

    def __init__(self, playback: Playback, stream: StreamSettings, text: TextSettings) -> None:
        self.playback = playback
        self._stream = stream
        self.text = text
        """How the text of utterances asked for now is cleaned."""

    def configure(self, stream: StreamSettings, text: TextSettings) -> None:
        """Settings for utterances asked for from now on (a config reload)."""
        self._stream, self.text = stream, text

    def saying(
        self,
        priority: Priority,
        origin: Origin,
        *,
        complete: bool = False,
        announce: Announce | None = None,
    ) -> Saying:
        """A request whose text comes in pieces; ``complete``: its first piece is all of
        it (the phrase cache may then play it)."""
        return Saying(self, priority, origin, complete=complete, announce=announce)

    def say(
        self, text: str, priority: Priority, origin: Origin, choice: VoiceChoice | None = None
    ) -> Utterance | None:
        """Queue a whole text: its utterance, or None when the text has nothing to speak.
        ``choice``: what it asks of the configured voice. Raises TextError."""
        if not worth_starting(text, self.text):
            return None
        utterance = self.utterance(priority, origin, choice)
        utterance.feed(text)
        utterance.close()
        if not utterance.has_speech:
            return None
        self.submit(utterance)
        return utterance

    def sound(self, frames: Frames, priority: Priority, origin: Origin) -> Utterance:
        """Queue a sound (at the device's rate) as an utterance of its own."""
        utterance = self.utterance(priority, origin)
        utterance.sound = frames
        utterance.close()
        self.submit(utterance)
        return utterance

    def find(self, utterance_id: str) -> Utterance | None:
        """A queued or playing utterance."""
        return self.playback.find(utterance_id)

    async def cancel(self, utterance: Utterance, why: str = "cancelled") -> bool:
        """Drop it, queued or playing (faded out); False if it had ended already."""
        return await self.playback.cancel(utterance, why)

    async def stop(self) -> int:
        """Every utterance cancelled, the playing one faded out; how many."""
        cancelled = await self.playback.stop()
        _LOGGER.info("stop: %d utterance(s) cancelled", cancelled)
        return cancelled

    def pause(self) -> None:
        self.playback.pause()

    def resume(self) -> None:
        self.playback.resume()

    def utterance(
        self, priority: Priority, origin: Origin, choice: VoiceChoice | None = None
    ) -> Utterance:
        """A new utterance with the current settings, not queued yet."""
        utterance = Utterance(self._stream, priority, self.text, origin)
        utterance.voice = choice
        return utterance

    def submit(self, utterance: Utterance) -> None:
        """Queue it: what it does to the others follows its priority."""
        self.playback.submit(utterance)
        _LOGGER.debug("%s queued (%s, from %s)", utterance.id, utterance.priority, utterance.origin)


class Saying:
    """One request's text as it comes: it becomes an utterance, queued, once there is
    something to speak in it; markup split over pieces ("*", "*", "bold") is kept until
    words come with it."""

    def __init__(
        self,
        speaker: Speaker,
        priority: Priority,
        origin: Origin,
        *,
        complete: bool,
        announce: Announce | None,
    ) -> None:
        self._speaker = speaker
        self.priority = priority
        self.origin = origin
        self.complete = complete
        self._announce = announce
        self._head = ""  # the text before the utterance starts
        self._fed = False  # its first piece has come
        self.utterance: Utterance | None = None

    async def feed(self, text: str) -> None:
        """More text; raises TextError once the utterance has ended, or for text after a
        complete one's first piece."""
        first, self._fed = not self._fed, True
        if self.complete and not first:
            if text:
                raise TextError(
                    "more text after a say marked complete: send the whole text in "
                    "its one message, or stream it without the mark"
                )
            return
        if self.utterance is not None:
            self.utterance.feed(text)
            return
        self._head += text
        if not worth_starting(self._head, self._speaker.text):
            return
        utterance = self.utterance = self._speaker.utterance(self.priority, self.origin)
        utterance.feed(self._head)
        if self.complete:
            # Closed before it is queued: the worker sees its whole text (the phrase cache).
            utterance.close()
        if self._announce is not None:
            await self._announce(utterance)
        self._speaker.submit(utterance)

    def close(self) -> None:
        """The end of its text."""
        if self.utterance is not None:
            self.utterance.close()

    def nothing_to_say(self) -> str:
        """Why a text that ended without an utterance is refused."""
        if not self._head.strip():
            return "nothing to say: the text is empty"
        return "nothing to say: the text has only markup, signs or control characters"
