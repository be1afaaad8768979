"""Text the service would misread: control characters always, markup unless asked for.

SpeechKit v3 reads its input as TTS markup: `+` before a vowel marks stress, `**word**`
emphasis, `sil<[300]>` and `<[small]>` pauses, `[[...]]` phonemes; a piece that is only
markup is rejected. An LLM writes markdown, which collides with it (`**bold**`, `C++`).

Always, in both modes of `[text] markup` (`strip_controls`): terminal escape sequences
(CSI `ESC [ ... final`, OSC/DCS/APC `ESC ] ... BEL or ESC \\`, two-byte escapes, 8-bit
CSI), other C0 and C1 control characters (NUL included), DEL, the byte order mark and
bidi controls (U+200E/F, U+061C, U+202A-E, U+2066-9) are removed; line breaks and tabs
become spaces (after "plain" has read the lines).

"plain" (`neutralise`) reads markdown and markup as a person would read them aloud:

| written                              | sent                                      |
|--------------------------------------|-------------------------------------------|
| `# Heading`, `## Heading ##`         | `Heading.` (a sentence of its own)        |
| `- item`, `* item`, `1. item`        | `item.` (each item a sentence)            |
| `- [x] done`                         | `done.`                                   |
| `> quoted`                           | `quoted`                                  |
| `| a | b |` (a table row)            | `a, b.`; the `|---|` row is dropped       |
| `---`, `***`, `===` (rules)          | nothing                                   |
| a ``` or ~~~ fence line              | nothing; each code line a sentence        |
| `Title` then a blank line            | `Title.`                                  |
| `**bold**`, `*it*`, `_it_`, `~~x~~`  | `bold`, `it`, `it`, `x`; `snake_case` stays |
| `` `code` ``                         | `code`                                    |
| `[the docs](https://x)`, `![a](x.png)` | `the docs`, `a`                         |
| `https://x.org/a` (a bare URL)       | unchanged                                 |
| `C++`, `C#`, `F#`, `g++`             | `C plus plus`, `C sharp`, `F sharp`, `g plus plus` |
| `2+2`, `2 + 2`, `x+y`                | `2 plus 2`, `2 plus 2`, `x plus y`        |
| `+7 999`, `A+`, `Disney+`            | `plus 7 999`, `A plus`, `Disney plus`     |
| `2*3`                                | `2 times 3`                               |
| `+` before a vowel (`rec+ord`)       | dropped: it would be a stress mark        |
| any other `+` (before a sign)        | dropped                                   |
| `sil<[300]>`, `<[small]>`            | dropped: a pause mark is not read         |
| `[[wiki page]]`, a lone `[[` or `]>` | `wiki page`: the brackets are dropped     |
| `[1]`, `a | b` (not a table)         | unchanged: not markup                     |

A line's added full stop comes only where it had no end punctuation of its own, so each
heading, item and row is heard as a sentence, not run into the next one. After "plain",
no `+`, `*`, `<[`, `]>`, `[[` or `]]` is left in the text.

"tts" leaves the markup as it is; only the control characters go.

Streamed text (`TextCleaner`): tokens may cut a construct anywhere (`**bo` + `ld**`, a
link over ten tokens, an escape sequence over two). The cleaner holds text back until it
can be read in context: the last word (so `2+` learns whether `2` follows, and a line's
last word whether a newline ends it), an unfinished link, `<[...]>`, `[[...]]` or escape
sequence, and the end of a line (`\\r` before `\\n`). What it lets go ends at a word
boundary, and line starts are followed across tokens. So, for streamed input:

- control characters and escape sequences never reach the service, however split;
- in "plain" no markup reaches the service, however split: every piece let go is
  neutralised on its own, and pieces meet only at whitespace;
- the text sent is the text `clean` gives for the whole input at once (up to runs of
  whitespace), provided no construct is cut by a pause in the input (`[stream] pause_ms`,
  after which what was held is let go) and none is longer than `HOLD_CHARS`. Past either
  limit the parts are neutralised separately: still no markup, but a link's URL may be
  read, or a line's full stop missed.

A sentence end lets everything go at once, so holding the last word never delays a
`force_synthesis`; otherwise it delays a word until the next one starts (or the pause).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from player.config.settings import Markup
from player.speech.sentences import ends_sentence

HOLD_CHARS = 300
"""An unfinished construct (a link, `<[...]>`, `[[...]]`, an escape sequence) held this
long is given up on: what came is let go and cleaned piece by piece."""

# --- Control characters (both modes) --------------------------------------------------

_OSC_BODY = r"(?:[^\x07\x1b]|\x1b(?!\\))*"
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    rf"|\x1b[\]PX^_]{_OSC_BODY}(?:\x07|\x1b\\)"  # OSC, DCS, SOS, PM, APC: to BEL or ST
    r"|\x1b[ -/]*[0-~]"  # the other escapes: two bytes, or three with an intermediate
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI in its 8-bit form
)
# An escape sequence, or a CR, that the next token may finish: it is held until then.
_UNFINISHED = re.compile(
    rf"(?:\x1b(?:\[[0-?]*[ -/]*|[\]PX^_]{_OSC_BODY}\x1b?|[ -/]*)|\x9b[0-?]*[ -/]*|\r)\Z"
)
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_CONTROLS = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_SPACES = re.compile(r"\s+")


def strip_controls(text: str) -> str:
    """``text`` without escape sequences, control characters or bidi controls; line
    breaks become "\\n" and tabs spaces."""
    text = _LINE_BREAKS.sub("\n", _ESCAPES.sub("", text))
    return _CONTROLS.sub("", text).replace("\t", " ")


# --- Markup within a line ("plain") ---------------------------------------------------

_WORDS = {"C++": "C plus plus", "C#": "C sharp", "F#": "F sharp"}
"""Names whose signs are read out (the generic rules below cover `g++`, `A+`)."""
_NAMES = r"(?<![\w+#])(?:" + "|".join(map(re.escape, _WORDS)) + r")(?![\w+#])"
_LOWER_VOWELS = "aeiou\u0430\u0435\u0451\u0438\u043e\u0443\u044b\u044d\u044e\u044f"  # and Cyrillic
_VOWELS = _LOWER_VOWELS + _LOWER_VOWELS.upper()
_URL = r"(?:[^()\s]|\([^()\s]*\))*"  # one level of brackets, as in Wikipedia's URLs

_Replacement = str | Callable[[re.Match[str]], str]
# In order: each rule sees what the ones before it left.
_INLINE: tuple[tuple[re.Pattern[str], _Replacement], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # Pauses: SpeechKit would be silent there, and a listener hears no sign either.
        (r"(?i:sil)<\[[^\]]*\]>|<\[[^\]]*\]>", " "),
        # A link or an image is read by its text; its URL is for the eye.
        (rf"!?\[([^\]]*)\]\({_URL}(?:\s+\"[^\"]*\")?\)", r"\1"),
        # The URL of a link whose text was let go before it (a pause in the input).
        (rf"\]\((?:[a-z][\w+.-]*:|www\.|/|#){_URL}\)", " "),
        # Phonemes or a wiki link: keep the words, drop the brackets.
        (r"\[\[([^\]]*)\]\]", r"\1"),
        (r"\[\[|\]\]|<\[|\]>", " "),  # halves of the above, never closed
        (r"`+", ""),  # inline code and fences' leftovers: the code itself is read
        (_NAMES, lambda match: _WORDS[match.group()]),
        (r"(?<=\w)\+\+(?![\w+])", " plus plus"),  # g++, Notepad++
        (r"(?<=\d)\s*\+\s*(?=\d)", " plus "),  # 2+2, 2 + 2
        (r"(?<=\w)\+(?![\w+])", " plus"),  # A+, Disney+, 18+
        (r"(?<!\S)\+(?=\d|\s|\Z)", "plus "),  # +7 999, a + b
        (rf"\+(?=[{_VOWELS}])", ""),  # a stress mark: not read, and not sent as one
        (r"(?<=\w)\+(?=\w)", " plus "),  # x+y
        (r"\+", ""),  # before a sign or a bracket: nothing to read
        (r"(?<=\d)\*(?=\d)", " times "),  # 2*3
        (r"\*+|~~", ""),  # emphasis, strikethrough
        (r"(?<!\w)_+|_+(?!\w)", ""),  # _emphasis_, __strong__; snake_case stays
    )
)


def _inline(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


# --- Markdown's lines ("plain") -------------------------------------------------------

_FENCE = re.compile(r"\s*(?:```|~~~)")
_RULE = re.compile(r"\s*([-*_=])(?:\s*\1){2,}\s*\Z")
_TABLE_RULE = re.compile(r"\s*\|?(?:\s*:?-+:?\s*\|)+\s*(?::?-+:?)?\s*\Z")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_HEADING = re.compile(r"\s{0,3}#{1,6}(?:\s+|\Z)")
_CLOSING_HASHES = re.compile(r"\s+#+\s*\Z")
_ITEM = re.compile(r"\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_TASK_BOX = re.compile(r"^\s*\[[ xX]\](?:\s+|\Z)")
_TABLE_ROW = re.compile(r"\s*\|")
_LAST_CELL = re.compile(r"\s*\|\s*\Z")
_CELL = re.compile(r"\s*\|\s*")
_END_PUNCTUATION = re.compile("[.!?\u2026:;,][\"'\u00bb\u201d\u2019)\\]]*\\s*\\Z")


class _Lines:
    """Reads markdown's line structure in text that comes in chunks; a chunk may end
    anywhere but inside a line's leading marker."""

    def __init__(self) -> None:
        self._start = True  # the next character begins a line
        self._fence = False  # inside a ``` block
        self._skip = False  # a fence line or a rule: nothing of it is read
        self._block = False  # a heading, item, row or code line: it ends a sentence
        self._heading = False
        self._table = False
        self._item = False  # a list item whose text has not begun: a task's box may come

    def convert(self, text: str, final: bool) -> str:
        """``text`` (free of control characters) read aloud; ``final``: nothing of its
        last line follows for now."""
        lines = text.split("\n")
        last = len(lines) - 1
        out = []
        for i, line in enumerate(lines):
            # A line followed by a blank one ends a paragraph (often a bold-only title).
            paragraph_end = i + 1 < last and not lines[i + 1].strip()
            out.append(self._line(line, i < last, final and i == last, paragraph_end))
        return _SPACES.sub(" ", "".join(out))

    def _line(self, line: str, ended: bool, final: bool, paragraph_end: bool) -> str:
        if self._start:
            if not line.strip() and not ended:
                return line  # the line's marker is still to come
            line = self._open(line)
            self._start = False
        text = "" if self._skip else self._read(line, ended or final)
        if not ended:
            return text
        if text.strip() and (self._block or paragraph_end) and not _END_PUNCTUATION.search(text):
            text = text.rstrip() + "."
        self._start = True
        self._skip = self._block = self._heading = self._table = self._item = False
        return text + " "

    def _open(self, line: str) -> str:
        """The line without its markdown marker; notes what kind of line it is."""
        if _FENCE.match(line):
            self._fence = not self._fence
            self._skip = True
            return ""
        if self._fence:
            self._block = True  # code is read line by line
            return line
        if _RULE.match(line) or ("|" in line and _TABLE_RULE.match(line)):
            self._skip = True
            return ""
        line = _QUOTE.sub("", line, count=1)
        for pattern in (_HEADING, _ITEM, _TABLE_ROW):
            if match := pattern.match(line):
                self._block = True
                self._heading = pattern is _HEADING
                self._table = pattern is _TABLE_ROW
                self._item = pattern is _ITEM
                return line[match.end() :]
        return line

    def _read(self, line: str, at_end: bool) -> str:
        if self._item and line.strip():
            # The box comes whole: an unfinished "[" is held as a possible link.
            line = _TASK_BOX.sub("", line, count=1)
            self._item = False
        if at_end and self._heading:
            line = _CLOSING_HASHES.sub("", line)
        if self._table:
            if at_end:
                line = _LAST_CELL.sub("", line)
            line = _CELL.sub(", ", line)
        return _inline(line)


# --- Whole texts ----------------------------------------------------------------------


def neutralise(text: str) -> str:
    """``text`` as "plain" sends it: no control characters and no markup, markdown read
    as a person would read it (see the table above). Pure."""
    return _Lines().convert(strip_controls(text), final=True)


def clean(text: str, markup: Markup) -> str:
    """``text`` as it is sent in the ``markup`` mode (whitespace runs become a space)."""
    if markup == "plain":
        return neutralise(text)
    return _SPACES.sub(" ", strip_controls(text))


def speakable(text: str, *, lines: bool = True) -> bool:
    """Whether ``text`` has anything to say once neutralised: a letter or a digit.
    ``lines=False`` takes it as a piece from within a text, whose line markers ("1. ",
    "# ") are not markers."""
    cleaned = neutralise(text) if lines else _inline(strip_controls(text))
    return any(char.isalnum() for char in cleaned)


# --- Streamed texts -------------------------------------------------------------------


class TextCleaner:
    """Cleans an utterance's text as it streams in, holding back what the next token may
    change; see the module's docstring for what that guarantees."""

    def __init__(self, markup: Markup = "plain") -> None:
        self._plain = markup == "plain"
        self._raw = ""  # an unfinished escape sequence (or CR) at the end of the input
        self._held = ""  # free of control characters, not yet let go
        self._lines = _Lines()

    def feed(self, text: str) -> str:
        """Cleaned text that can be sent now ("" if none), ending at a word boundary."""
        raw = self._raw + text
        tail = _UNFINISHED.search(raw)
        cut = (
            tail.start() if tail is not None and len(raw) - tail.start() <= HOLD_CHARS else len(raw)
        )
        self._raw = raw[cut:]
        self._held += strip_controls(raw[:cut])
        return self._let_go(self._cut(), final=False)

    def flush(self) -> str:
        """Everything held, cleaned as it is (the input paused); an unfinished escape
        sequence stays held, as its end may still come."""
        return self._let_go(len(self._held), final=True)

    def finish(self) -> str:
        """The rest, at the end of the input: an escape sequence that never ended is
        dropped (a CR is a line break)."""
        if self._raw == "\r":
            self._held += "\n"
        self._raw = ""
        return self.flush()

    def _cut(self) -> int:
        """How much of the held text can be let go now."""
        text = self._held
        if not self._plain or (text[-1:].isspace() and ends_sentence(text)):
            word_cut = len(text)  # "tts" leaves words to the joiner; a sentence end goes now
        else:
            word_cut = _last_word(text)
        cut = word_cut
        for start, end in reversed(list(_constructs(text))):
            if start < cut and (end is None or end > cut):
                cut = _word_start(text, start)
        if len(text) - cut > HOLD_CHARS:
            cut = word_cut
        return cut if len(text) - cut <= HOLD_CHARS else len(text)

    def _let_go(self, cut: int, *, final: bool) -> str:
        ready, self._held = self._held[:cut], self._held[cut:]
        if not ready:
            return ""
        if self._plain:
            return self._lines.convert(ready, final)
        return _SPACES.sub(" ", ready)


_WORD = re.compile(r"\S+")


def _last_word(text: str) -> int:
    """Where the last word with a letter or digit in it starts (0 if none): it is held
    with whatever follows it, so signs after it ("2 +", "b |") stay with the next word."""
    start = 0
    for match in _WORD.finditer(text):
        if any(char.isalnum() for char in match.group()):
            start = match.start()
    return start


def _word_start(text: str, index: int) -> int:
    while index > 0 and not text[index - 1].isspace():
        index -= 1
    return index


def _constructs(text: str) -> Iterator[tuple[int, int | None]]:
    """(start, end) of each bracketed construct: `[text](url)`, `[text]`, `[[...]]`,
    `<[...]>`; end None while it is unfinished (a `[text]` at the very end too, as its
    `(url)` may follow)."""
    i = 0
    while (start := _first_bracket(text, i)) >= 0:
        if text.startswith("<[", start):
            close = text.find("]>", start + 2)
            end = None if close < 0 else close + 2
        elif text.startswith("[[", start):
            close = text.find("]]", start + 2)
            end = None if close < 0 else close + 2
        else:
            end = _link_end(text, start)
        yield start, end
        if end is None:
            return
        i = end


def _first_bracket(text: str, i: int) -> int:
    found = [k for k in (text.find("<[", i), text.find("[", i)) if k >= 0]
    return min(found, default=-1)


def _link_end(text: str, start: int) -> int | None:
    close = text.find("]", start + 1)
    if close < 0 or close + 1 == len(text):
        return None
    if text[close + 1] != "(":
        return close + 1
    depth = 0
    for k in range(close + 1, len(text)):
        if text[k] == "(":
            depth += 1
        elif text[k] == ")":
            depth -= 1
            if depth == 0:
                return k + 1
    return None
