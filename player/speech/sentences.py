"""Cutting streamed text into sentences, the unit a local synthesizer speaks at once."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … (closing quotes or brackets may follow) before whitespace.
_END = re.compile("[.!?\u2026]+[\"'\u00bb\u201d\u2019)\\]]*(?=\\s)")
_END_AT_END = re.compile(_END.pattern + " $")
# Words after which a full stop rarely ends the sentence.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx"}
)
MAX_SENTENCE_CHARS = 400
"""A run-on text is cut (at a comma, else at a space) once it is this long."""
_CLAUSE = re.compile("[,;:\u2014\u2013]\\s")  # comma, semicolon, colon, dashes
_CLAUSE_END = re.compile("[,;:\u2014\u2013]$")
# Words that open a clause, in the languages SpeechKit speaks most: a break before one
# sounds like a breath, not a stumble.
_CLAUSE_WORDS = frozenset(
    {"and", "but", "or", "so", "because", "while", "which", "where", "when", "then"}
    | {"и", "\u0430", "но", "или", "потому", "поэтому", "который", "которая", "которое", "где"}
)


def _is_abbreviation(sentence: str) -> bool:
    words = sentence.rstrip(".").split()
    return bool(words) and sentence.endswith(".") and words[-1].lower() in _ABBREVIATIONS


def ends_sentence(piece: str) -> bool:
    """Whether ``piece`` (text ending in whitespace) ends with a sentence's end."""
    text = piece.rstrip()
    if not _END_AT_END.search(text + " "):
        return False
    return not _is_abbreviation(text)


def ends_clause(piece: str) -> bool:
    """Whether ``piece`` ends with a comma, semicolon, colon or dash."""
    return bool(_CLAUSE_END.search(piece.rstrip()))


def starts_clause(piece: str) -> bool:
    """Whether ``piece`` begins with a word that opens a clause ("and", "but", "и", ...)."""
    words = piece.split(maxsplit=1)
    return bool(words) and words[0].lower() in _CLAUSE_WORDS


def sentence_start(text: str, index: int) -> int:
    """Where the sentence holding ``text[index]`` begins (its first non-space character)."""
    start = 0
    for match in _END.finditer(text, 0, index + 1):
        if match.end() <= index and not _is_abbreviation(text[start : match.end()]):
            start = match.end()
    while start < index and text[start].isspace():
        start += 1
    return start


class SentenceSplitter:
    """Buffers text pieces and hands out each sentence as soon as it is complete."""

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self._buffer = ""
        self._max = max_chars

    @property
    def pending(self) -> str:
        """Text received but not yet handed out."""
        return self._buffer

    def feed(self, text: str) -> list[str]:
        """Add `text`; return the sentences it completed, in order."""
        self._buffer += text
        sentences: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            if _is_abbreviation(self._buffer[start : match.end()]):
                continue
            sentences.append(self._buffer[start : match.end()])
            start = match.end()
        self._buffer = self._buffer[start:]
        while len(self._buffer) >= self._max:
            cut = self._cut_point(self._buffer[: self._max])
            sentences.append(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
        return [s for s in (sentence.strip() for sentence in sentences) if s]

    def flush(self) -> str:
        """Return whatever is buffered (stripped; may be empty) and forget it."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest

    @staticmethod
    def _cut_point(text: str) -> int:
        clauses = list(_CLAUSE.finditer(text))
        if clauses:
            return clauses[-1].end()
        space = text.rfind(" ")
        return space + 1 if space > 0 else len(text)
