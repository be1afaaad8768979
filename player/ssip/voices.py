"""The voices SSIP clients are offered, and the text a message speaks.

`LIST SYNTHESIS_VOICES` lists the SpeechKit voices with the language each speaks, and
the local voices configured under `[local] voices`; each line has speech-dispatcher's
three tab-separated fields (name, language, variant), which libspeechd needs. A `LANGUAGE`
picks a voice of that language when the chosen one does not speak it.
"""

from __future__ import annotations

import html.parser
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from player import limits

KEY_NAMES = {
    "space": "space",
    "underscore": "underscore",
    "double-quote": "double quote",
}
"""speech-dispatcher's key names that are not what they say when read."""
CHAR_NAMES = {
    " ": "space",
    "\t": "tab",
    "\n": "new line",
    ".": "dot",
    ",": "comma",
    "-": "dash",
    "_": "underscore",
    "'": "apostrophe",
    '"': "quote",
}
"""Characters that say nothing when spoken alone."""


@dataclass(frozen=True)
class Voice:
    name: str
    language: str
    """BCP 47, as the synthesizer speaks it ("ru-RU")."""
    variant: str = "none"


def offered(local: Iterable[str] = ()) -> list[Voice]:
    """SpeechKit's voices, then the local ones (their language unknown: "none")."""
    voices = [Voice(name, lang) for name, lang in sorted(limits.VOICE_LANGUAGES.items())]
    voices += [Voice(name, "none") for name in local if name not in limits.VOICE_LANGUAGES]
    return voices


def listing(voices: Iterable[Voice]) -> list[str]:
    """`LIST SYNTHESIS_VOICES`'s data lines."""
    return [f"{v.name}\t{v.language}\t{v.variant}" for v in voices]


def for_language(voices: Iterable[Voice], language: str, current: str) -> str:
    """The voice to speak ``language`` with: ``current`` if it speaks it, else the first
    that does; ``current`` when none does (the language is then only a wish)."""
    wanted = language.lower()
    by_name = {v.name: v for v in voices}
    if current in by_name and _speaks(by_name[current], wanted):
        return current
    return next((v.name for v in by_name.values() if _speaks(v, wanted)), current)


def _speaks(voice: Voice, wanted: str) -> bool:
    language = voice.language.lower()
    return language == wanted or language.split("-")[0] == wanted.split("-")[0]


def char_text(argument: str) -> str:
    """What `CHAR` speaks: the character, or its name where alone it says nothing
    ("!" as "exclamation mark")."""
    if argument.lower() == "space":
        return "space"
    if argument in CHAR_NAMES:
        return CHAR_NAMES[argument]
    if len(argument) == 1 and not argument.isalnum():
        return unicodedata.name(argument, argument).lower()
    return argument


def key_text(argument: str) -> str:
    """What `KEY` speaks: "shift_a" as "shift a", "kp-enter" as "kp enter"."""
    name = argument.lower()
    if name in KEY_NAMES:
        return KEY_NAMES[name]
    parts = [CHAR_NAMES.get(p, p) for p in name.split("_") if p]
    return " ".join(p.replace("-", " ") if len(p) > 1 else p for p in parts) or name


Mark = tuple[int, str]
"""An SSML `<mark name=.../>`: how many non-space characters of the text come before
it, and its name."""


def ssml_text(markup: str, sent: Callable[[str], str] = str) -> tuple[str, list[Mark]]:
    """The words of an SSML message (its tags dropped, entities read as characters) and
    its marks, each counted in what ``sent`` makes of the text before it: the text as the
    service is sent it, which is what its chunks of text echo ("C++" read as "C plus
    plus"). Markup that does not parse is read as far as it does, as text."""
    reader = _SsmlReader()
    reader.feed(markup)
    reader.close()
    marks = [(spoken_chars(sent(before)), name) for before, name in reader.marks]
    return "".join(reader.text), marks


def spoken_chars(text: str) -> int:
    """What marks count text in: its characters that are not white space."""
    return sum(not c.isspace() for c in text)


class _SsmlReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.marks: list[tuple[str, str]] = []
        """(the text before it, its name) of each mark."""

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mark":
            name = dict(attrs).get("name")
            if name:
                self.marks.append(("".join(self.text), name))
        # Tags part words as a pause would (`<break/>`, a sentence's `</s>`).
        self.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.text.append(" ")
