"""Utterances waiting for their synthesis call, in the order their priorities give."""

from __future__ import annotations

from collections.abc import Iterator

from player.speech.priority import Priority
from player.speech.utterance import Utterance


class Schedule:
    """Important ones first, the rest in the order they came; a message interrupted by an
    important one goes back to the head of the rest. The latest progress that could not
    be spoken at once is held until nothing else is left."""

    def __init__(self) -> None:
        self._waiting: list[Utterance] = []
        self.held: Utterance | None = None
        """The progress utterance to speak once everything else is done."""

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(list(self._waiting))

    def __contains__(self, utterance: object) -> bool:
        return utterance in self._waiting

    def add(self, utterance: Utterance, *, resumed: bool = False) -> None:
        """Queue it; ``resumed``: it was interrupted, and goes before what came after it."""
        importants = sum(1 for u in self._waiting if u.priority is Priority.IMPORTANT)
        if utterance.priority is Priority.IMPORTANT or resumed:
            self._waiting.insert(importants, utterance)
        else:
            self._waiting.append(utterance)

    def hold(self, utterance: Utterance) -> Utterance | None:
        """Keep ``utterance`` (a progress) for later; returns the one it replaces."""
        older, self.held = self.held, utterance
        return older

    def remove(self, utterance: Utterance) -> bool:
        if utterance in self._waiting:
            self._waiting.remove(utterance)
            return True
        if self.held is utterance:
            self.held = None
            return True
        return False

    def pop(self) -> Utterance | None:
        if self._waiting:
            return self._waiting.pop(0)
        held, self.held = self.held, None
        return held

    def clear(self) -> list[Utterance]:
        gone = [*self._waiting, *([self.held] if self.held else [])]
        self._waiting.clear()
        self.held = None
        return gone
