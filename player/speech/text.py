"""Cutting streamed text at word boundaries, as the synthesis stream wants it."""

from __future__ import annotations


class WordJoiner:
    """Cuts streamed text at word boundaries.

    The service glues consecutive pieces into one word unless each ends with a space, so
    a piece that stops mid-word is held until its word is complete (or the text ends).
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """Returns what can be sent now ("" if nothing): whole words, ending in a space."""
        text = self._held + text
        if text[-1:].isspace():
            ready, self._held = text, ""
        else:
            cut = _last_space(text)
            if cut < 0:
                self._held = text
                return ""
            ready, self._held = text[:cut], text[cut + 1 :]
        return _piece(ready)

    def finish(self) -> str:
        """The rest of the text, ending in a space ("" if nothing is left)."""
        rest, self._held = self._held, ""
        return _piece(rest)


def _last_space(text: str) -> int:
    """Index of the last whitespace character, or -1."""
    for i in range(len(text) - 1, -1, -1):
        if text[i].isspace():
            return i
    return -1


def _piece(text: str) -> str:
    stripped = text.strip()
    return stripped + " " if stripped else ""
