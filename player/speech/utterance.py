"""One utterance's text as it streams in, turned into what a synthesis call sends.

Pieces of any size (single LLM tokens included) are joined at word boundaries; each
piece sent ends with a space. A sentence end, or a pause in the input, adds
`force_synthesis`, so the service speaks what it has instead of waiting for more. A
stall is silence, never the end; only an input left idle for `idle_close_s` is closed.

The text is cleaned on its way in (`player.speech.markup`, as `[text] markup` says): a
piece with nothing to speak is never sent.

Everything queued is kept, and each synthesis call reads it from a cursor: an utterance
cut by a more important one is spoken again by a new call that starts from the sentence
that was cut (`rewind`), then goes on with whatever text came meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from player import limits
from player.audio.ring import Frames
from player.config import StreamSettings, TextSettings
from player.errors import TextError
from player.speech.markup import TextCleaner, speakable
from player.speech.priority import Priority
from player.speech.sentences import (
    SentenceSplitter,
    ends_clause,
    ends_sentence,
    sentence_start,
    starts_clause,
)
from player.speech.text import WordJoiner
from player.synthesis.interface import FORCE, Piece, VoiceChoice

_LOGGER = logging.getLogger(__name__)

SHORT_OPENING_CHARS = 24
"""A first sentence this short ("Sure.", "Of course!") is spoken in well under a second,
less than it takes to write and synthesise a whole second sentence at an LLM's pace."""
MIN_CLAUSE_CHARS = 20
"""Characters the second sentence needs before its first clause is sent on its own: a
shorter piece sounds clipped."""


@dataclass(frozen=True)
class Origin:
    """Where an utterance was asked for: shown in its `queued` event and in the log."""

    front: str = "control"
    """"control" (the gRPC API: CLI, Python client), "mqtt", "ssip"."""
    client: str = ""
    """The client's own name for itself, where the front has one (SSIP's CLIENT_NAME)."""

    def __str__(self) -> str:
        return f"{self.front} {self.client}" if self.client else self.front


class Utterance:
    """Text arriving in pieces, and a future for the frames it played."""

    _ids = itertools.count(1)

    def __init__(
        self,
        settings: StreamSettings | None = None,
        priority: Priority = Priority.MESSAGE,
        text: TextSettings | None = None,
        origin: Origin | None = None,
    ) -> None:
        settings = settings or StreamSettings()
        self.id = f"u{next(self._ids)}"
        self.priority = priority
        self.origin = origin or Origin()
        self.voice: VoiceChoice | None = None
        """What it asks of the configured voice (a front's client's choice); None: nothing."""
        self.sound: Frames | None = None
        """A sound it plays instead of any text (SSIP's sound icons), at the device's rate."""
        self.played_frames = 0
        """Frames heard in earlier, interrupted runs."""
        self.runs = 0
        """Synthesis calls started for it (more than one after an interruption)."""
        self.chars = 0
        self.created = time.monotonic()
        """When it was asked for: `started` events count from here."""
        self.idle_closed = False
        """Closed because its input stayed idle for `idle_close_s`."""
        self.has_speech = False
        """Some text with something to speak was queued (not only markup or signs)."""
        self._pause = settings.pause_ms / 1000
        self._idle = settings.idle_close_s
        self._cleaner = TextCleaner((text or TextSettings()).markup)
        self._joiner = WordJoiner()
        self._log: list[Piece] = []  # everything queued, in order
        self._next = 0  # the log item a call takes next
        self._skip = 0  # characters of that item already spoken (after a rewind)
        self._run_start = (0, 0)  # (_next, _skip) when the current call began
        self._more = asyncio.Event()
        self._closed = False
        self._unforced = False  # text queued since the last force_synthesis
        self._since_force = 0  # characters queued since the last force_synthesis
        self._opening = True  # no sentence has ended yet
        # After a short first sentence, the next is sent clause by clause until its first
        # clause break, so the listener is not left waiting for the whole of it.
        self._clause_due = False
        self._carry = ""  # markup with nothing to speak, waiting for words to go with
        self._loop = asyncio.get_running_loop()
        self._timers: list[asyncio.TimerHandle] = []
        self.done: asyncio.Future[int] = self._loop.create_future()
        # Nobody awaits a fire-and-forget `say`; its failure is logged and counted.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())

    @property
    def whole_text(self) -> str | None:
        """All of its text, when it has ended before any call started (a `say` of a
        whole text, an announcement): what the phrase cache looks up. None otherwise."""
        if not self._closed or self.runs:
            return None
        return "".join(piece for piece in self._log if isinstance(piece, str))

    def recalled(self) -> None:
        """Its whole text is being played from the phrase cache: as if one call had sent
        all of it, so that a cut finds the sentence it is in (`rewind`), and what starts
        again is synthesised from there."""
        self.runs += 1
        self._run_start = (0, 0)
        self._next, self._skip = len(self._log), 0

    def feed(self, text: str) -> None:
        if self._closed:
            why = (
                f"it was closed after {self._idle:g} s without text ([stream] idle_close_s)"
                if self.idle_closed
                else "it has already ended"
            )
            raise TextError(f"no more text for {self.id}: {why}")
        # Any length: a text over one call's limit is spoken in several calls
        # (player.synthesis.long_text).
        self.chars += len(text)
        self._queue(self._joiner.feed(self._cleaner.feed(text)), force_at_sentence_end=True)
        self._rearm()

    def close(self) -> None:
        """The text has ended (half-closing the call flushes it; no force needed)."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timers()
        self._let_go(self._cleaner.finish())
        self._more.set()

    async def pieces(self) -> AsyncIterator[Piece]:
        """What one synthesis call sends, from where the last one was cut."""
        self.runs += 1
        self._run_start = (self._next, self._skip)
        while True:
            if self._next < len(self._log):
                piece = self._log[self._next]
                if self._skip and isinstance(piece, str):
                    piece = piece[self._skip :]
                self._next, self._skip = self._next + 1, 0
                yield piece
            elif self._closed:
                return
            else:
                self._more.clear()
                await self._more.wait()

    def rewind(self, heard_chars: int) -> None:
        """Have the next call start again at the sentence of this call's text that was
        being spoken when ``heard_chars`` non-space characters of it had been heard."""
        index, skip = self._run_start
        texts = [(i, p) for i, p in enumerate(self._log[index : self._next], index)]
        text, owners = "", list[tuple[int, int]]()  # owners[k]: (log item, offset) of text[k]
        for i, piece in texts:
            if isinstance(piece, str):
                offset = skip if i == index else 0
                owners.extend((i, offset + k) for k in range(len(piece) - offset))
                text += piece[offset:]
        seen, at = 0, len(text)
        for k, char in enumerate(text):
            if not char.isspace():
                if seen == heard_chars:
                    at = k
                    break
                seen += 1
        if at == len(text):
            return  # all of it was heard: go on from where the call stopped
        self._next, self._skip = owners[sentence_start(text, at)]

    def resolve(self, frames: int) -> None:
        self._cancel_timers()
        if not self.done.done():
            self.done.set_result(frames)

    def fail(self, error: Exception) -> None:
        self._cancel_timers()
        if not self.done.done():
            self.done.set_exception(error)

    def _queue(self, piece: str, *, force_at_sentence_end: bool) -> None:
        if not piece:
            return
        # One piece per sentence: each is forced, and an interrupted utterance can say
        # which sentence was cut from the text chunks the service sends for each.
        splitter = SentenceSplitter()
        for sentence in [*splitter.feed(piece), splitter.flush()]:
            ends = ends_sentence(sentence + " ")
            # The service rejects a piece that is only markup, and signs say nothing:
            # such a piece goes with the next one ("sil<[300]> " before a word in "tts"),
            # or nowhere if it ends a sentence.
            early = force_at_sentence_end and self._clause_due and not ends
            if speakable(sentence, lines=False):
                if early and starts_clause(sentence):
                    self._force_clause()  # what came before this "and" goes now
                self._log.append(self._carry + sentence + " ")
                self._since_force += len(self._carry) + len(sentence) + 1
                self._carry = ""
                self._more.set()
                self._unforced = True
                self.has_speech = True
                if early and ends_clause(sentence):
                    self._force_clause()
            elif sentence:
                self._carry = "" if ends else self._carry + sentence + " "
            if force_at_sentence_end and ends:
                self._clause_due = self._opening and self._since_force <= SHORT_OPENING_CHARS
                self._opening = False
                self._force()

    def _let_go(self, cleaned: str) -> None:
        """Queues the rest of the text for now: what the cleaner held, and the word the
        joiner held."""
        self._queue(self._joiner.feed(cleaned) + self._joiner.finish(), force_at_sentence_end=False)

    def _force(self) -> None:
        if self._unforced:
            self._log.append(FORCE)
            self._more.set()
            self._unforced = False
        self._since_force = 0

    def _force_clause(self) -> None:
        """The first clause of the sentence after a short first one, once it is long
        enough to sound whole: synthesised while the first sentence still plays."""
        if self._since_force >= MIN_CLAUSE_CHARS:
            self._force()
            self._clause_due = False

    def _rearm(self) -> None:
        self._cancel_timers()
        self._timers = [
            self._loop.call_later(self._pause, self._paused),
            self._loop.call_later(self._idle, self._idled),
        ]

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _paused(self) -> None:
        # A word held back waiting for its end is as complete as it will be for a while.
        self._let_go(self._cleaner.flush())
        self._force()

    def _idled(self) -> None:
        _LOGGER.warning("%s: no text for %g s; closed ([stream] idle_close_s)", self.id, self._idle)
        self.idle_closed = True
        self.close()


def worth_starting(head: str, text: TextSettings) -> bool:
    """Whether the input so far (``head``) is worth an utterance: it has something to
    speak, or is already as long as a call's text (held longer, it would only grow).
    Markup, signs and control characters alone ("**", "- ", a colour escape) are not."""
    return len(head) > limits.TEXT_PER_CALL or speakable(head, lines=text.markup == "plain")
