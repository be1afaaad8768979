"""One SSIP client's connection: its lines read, its commands carried out through the
`Speaker` every front uses, its replies and events written.

Lines end in CRLF (a bare LF is taken too); commands are case-insensitive. `SPEAK`
switches to data until a line that is a lone ".", a leading ".." standing for ".". Every
command gets exactly one reply, and events are written only between replies. A line or
a message over its bound, text that is not UTF-8 and a message with nothing to speak
each get their error line, and the connection goes on. A client that stops reading has
its own events queue up (the oldest dropped past a bound): it holds up no one else.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

from player.audio.ring import Frames
from player.errors import SpeechError
from player.speech.markup import clean
from player.speech.priority import Priority
from player.speech.requests import Origin, Speaker
from player.speech.utterance import Utterance
from player.ssip import replies
from player.ssip.choices import NOT_IN_BLOCK, OWN_ONLY, SETTERS, Choices, voice_choice
from player.ssip.clients import Clients, Message
from player.ssip.queries import get_reply, help_reply, history_reply, list_reply
from player.ssip.voices import Mark, Voice, char_text, for_language, key_text, ssml_text

_LOGGER = logging.getLogger(__name__)

LINE_BYTES = 256 * 1024
"""The longest line read: a command, or one line of a message's text."""
MESSAGE_BYTES = 1024 * 1024
"""The longest message `SPEAK` takes (about 20 minutes of speech)."""
EVENTS_KEPT = 1000
"""Events kept for a client that is not reading them; the oldest go first."""
WRITE_TIMEOUT_S = 30.0
"""Seconds a reply may wait for a client to read; then the connection is closed."""

_CLOSE = object()


class Connection:
    """Serves one client until it quits or goes away; see the module's doc."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        speaker: Speaker,
        clients: Clients,
        voices: list[Voice],
        configured_voice: str,
        icons: Mapping[str, Frames],
    ) -> None:
        """``configured_voice``: the voice a client that chose none speaks with;
        ``icons``: the sounds `SOUND_ICON` plays, by name, at the device's rate."""
        self.id = 0
        self.choices = Choices()
        self._reader = reader
        self._writer = writer
        self._speaker = speaker
        self._clients = clients
        self._voices = voices
        self._configured_voice = configured_voice
        self._icons = icons
        self._events: collections.deque[bytes] = collections.deque(maxlen=EVENTS_KEPT)
        self._events_due = asyncio.Event()
        self._replying = asyncio.Lock()
        self._in_block = False
        self._overlong = False  # the line just read was over LINE_BYTES

    # -- events ----------------------------------------------------------------------

    def send_event(self, data: bytes) -> None:
        self._events.append(data)
        self._events_due.set()

    async def _write_events(self) -> None:
        while True:
            await self._events_due.wait()
            self._events_due.clear()
            async with self._replying:
                while self._events:
                    self._writer.write(self._events.popleft())
                await self._drain()

    # -- serving ---------------------------------------------------------------------

    async def serve(self) -> None:
        self._clients.join(self)
        _LOGGER.debug("SSIP client %d connected", self.id)
        try:
            async with asyncio.TaskGroup() as group:
                events = group.create_task(self._write_events())
                await self._commands()
                events.cancel()
        except* (ConnectionError, TimeoutError) as gone:
            _LOGGER.debug("SSIP client %d went away: %s", self.id, gone.exceptions[0])
        finally:
            if self._clients.leave(self):
                # Its PAUSE must not leave the speaker silent after it has gone.
                self._speaker.resume()
            self._writer.close()
            _LOGGER.debug("SSIP client %d disconnected", self.id)

    async def _commands(self) -> None:
        while True:
            line = await self._line()
            if line is None:
                return
            async with self._replying:
                answer = await self._answer(line)
                if answer is _CLOSE:
                    self._writer.write(replies.reply(replies.BYE))
                    await self._drain()
                    return
                assert isinstance(answer, bytes)
                self._writer.write(answer)
                await self._drain()

    async def _drain(self) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await self._writer.drain()

    async def _line(self) -> bytes | None:
        """The next command line without its end (CRLF, or a bare LF); None at the end
        of the input. An overlong one comes back empty, flagged by `_overlong`."""
        raw = await self._raw_line()
        return None if raw is None else raw.rstrip(b"\n").removesuffix(b"\r")

    async def _raw_line(self) -> bytes | None:
        """The next line as sent, its end included; see `_line`."""
        self._overlong = False
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None  # the client went away; half a line means nothing
        except asyncio.LimitOverrunError:
            try:
                await self._skip_line()
            except asyncio.IncompleteReadError:
                return None  # it went away before the line ended
            self._overlong = True
            return b""

    async def _skip_line(self) -> None:
        """Read and drop up to the end of an overlong line."""
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as err:
                await self._reader.readexactly(err.consumed)

    # -- commands --------------------------------------------------------------------

    async def _answer(self, raw: bytes) -> bytes | object:
        if self._overlong:
            return replies.reply(replies.LINE_TOO_LONG)
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            return replies.reply(replies.INVALID_ENCODING)
        words = line.split()
        if not words:
            return replies.reply(replies.INVALID_COMMAND)
        verb, args = words[0].lower(), words[1:]
        if verb in ("quit", "bye"):
            return _CLOSE
        command = self._COMMANDS.get(verb)
        if command is None:
            return replies.reply(replies.INVALID_COMMAND)
        if self._in_block and verb not in self._IN_BLOCK:
            return replies.reply(replies.NOT_ALLOWED_INSIDE_BLOCK)
        return await command(self, args)

    async def _speak(self, args: list[str]) -> bytes:
        self._writer.write(replies.reply(replies.RECEIVING_DATA))
        await self._drain()
        data, problem = await self._data()
        if problem is not None:
            return replies.reply(problem)
        if not data.strip():
            return replies.reply(replies.MESSAGE_CANCELED)
        text, marks = ssml_text(data, self._sent) if self.choices.ssml else (data, [])
        return self._queue(text, self.choices.priority, marks)

    async def _data(self) -> tuple[str, str | None]:
        """A message's text, up to its end; or the error its end is answered with.

        As speech-dispatcher reads it: the end is a line "." after a CRLF, and ".." at
        the start of such a line stands for "."; a bare LF is part of the text (Python's
        speechd escapes dots only after CRLFs)."""
        data = bytearray()
        problem, line_start = None, True
        while True:
            raw = await self._raw_line()
            if raw is None:
                raise ConnectionResetError("the client went away inside a message")
            if self._overlong:
                # Its end was dropped with it: taken as a CRLF, so a "." may end the data.
                problem, line_start = replies.LINE_TOO_LONG, True
                continue
            if line_start and raw == b".\r\n":
                break
            if line_start and raw.startswith(b".."):
                raw = raw[1:]
            line_start = raw.endswith(b"\r\n")
            if problem is None and len(data) + len(raw) > MESSAGE_BYTES:
                problem = replies.MESSAGE_TOO_LONG
                data.clear()  # the rest is read only to find the end
            if problem is None:
                data += raw
        if problem is not None:
            return "", problem
        try:
            text = bytes(data).removesuffix(b"\r\n").decode()
        except UnicodeDecodeError:
            return "", replies.INVALID_ENCODING
        return text.replace("\r\n", "\n"), None

    def _sent(self, text: str) -> str:
        """``text`` as the service is sent it (the daemon's [text] markup handling)."""
        return clean(text, self._speaker.text.markup)

    def _queue(self, text: str, priority: Priority, marks: list[Mark] | None = None) -> bytes:
        choices = self.choices
        origin = Origin("ssip", choices.name)
        try:
            utterance = self._speaker.say(text, priority, origin, voice_choice(choices))
        except SpeechError as err:
            _LOGGER.info("SSIP client %d: %s", self.id, err)
            utterance = None
        if utterance is None:
            # Nothing to speak in it (signs alone): queued and over at once, as
            # speech-dispatcher does; a refusal would be an error to its clients.
            return self._queued(
                self._clients.at_once(self, self._speaker.utterance(priority, origin))
            )
        return self._queued(self._clients.sent(self, utterance, marks))

    @staticmethod
    def _queued(message: int) -> bytes:
        return replies.reply(replies.MESSAGE_QUEUED, [str(message)])

    async def _char(self, args: list[str]) -> bytes:
        if not args:
            return replies.reply(replies.MISSING_PARAMETER)
        return self._queue(char_text(" ".join(args)), self.choices.priority)

    async def _key(self, args: list[str]) -> bytes:
        if not args:
            return replies.reply(replies.MISSING_PARAMETER)
        return self._queue(key_text(args[0]), self.choices.priority)

    async def _sound_icon(self, args: list[str]) -> bytes:
        if not args:
            return replies.reply(replies.MISSING_PARAMETER)
        origin, priority = Origin("ssip", self.choices.name), self.choices.priority
        sound = self._icons.get(args[0].lower())
        if sound is None:
            # An icon not configured plays nothing, as speech-dispatcher's missing ones.
            return self._queued(
                self._clients.at_once(self, self._speaker.utterance(priority, origin))
            )
        utterance = self._speaker.sound(sound, priority, origin)
        return self._queued(self._clients.sent(self, utterance))

    async def _set(self, args: list[str]) -> bytes:
        if len(args) < 2:
            return replies.reply(replies.MISSING_PARAMETER)
        scope, name, values = args[0].lower(), args[1].lower(), args[2:]
        setter = SETTERS.get(name)
        if setter is None:
            return replies.reply(replies.INVALID_COMMAND)
        if not values:
            return replies.reply(replies.MISSING_PARAMETER)
        if self._in_block and name in NOT_IN_BLOCK:
            return replies.reply(replies.NOT_ALLOWED_INSIDE_BLOCK)
        targets = self._scope(scope)
        if targets is None:
            invalid = replies.NO_SUCH_CLIENT if scope.isdigit() else replies.PARAMETER_INVALID
            return replies.reply(invalid)
        if name in OWN_ONLY and targets != [self.choices]:
            return replies.reply(OWN_ONLY[name])
        if name == "synthesis_voice":
            voice = self._voice_named(values)
            if voice is None:
                return replies.reply(replies.COULDNT_SET_VOICE)
            values = [voice]
        answer = replies.PARAMETER_INVALID
        for choices in targets:
            answer = setter(choices, values)
        self._after_set(name, answer, targets)
        return replies.reply(answer)

    def _after_set(self, name: str, answer: str, targets: list[Choices]) -> None:
        if name == "language" and answer == replies.LANGUAGE_SET:
            # A voice that speaks it, unless the one chosen does.
            for choices in targets:
                current = choices.voice or self._configured_voice
                voice = for_language(self._voices, choices.language, current)
                choices.voice = "" if voice == self._configured_voice else voice

    def _voice_named(self, values: list[str]) -> str | None:
        """The offered voice a SYNTHESIS_VOICE names (in any case)."""
        wanted = " ".join(values).strip('"').lower()
        return next((v.name for v in self._voices if v.name.lower() == wanted), None)

    def _scope(self, scope: str) -> list[Choices] | None:
        if scope == "self":
            return [self.choices]
        if scope == "all":
            return [peer.choices for peer in self._clients.peers.values()]
        if scope.isdigit() and (peer := self._clients.peers.get(int(scope))) is not None:
            return [peer.choices]
        return None

    async def _stop(self, args: list[str]) -> bytes:
        return await self._end(args, replies.STOPPED, queued_too=False)

    async def _cancel(self, args: list[str]) -> bytes:
        return await self._end(args, replies.CANCELED, queued_too=True)

    async def _end(self, args: list[str], done: str, *, queued_too: bool) -> bytes:
        """STOP: the message being spoken, if it is one of theirs; CANCEL: that and every
        message of theirs queued. `all`: everybody's."""
        if (wrong := self._who_is_wrong(args)) is not None:
            return replies.reply(wrong)
        who, playing = args[0].lower(), self._playing()
        if who == "all":
            if queued_too:
                await self._speaker.stop()
            elif playing is not None:
                await self._speaker.cancel(playing, "stopped")
            return replies.reply(done)
        client = self._client_of(who)
        assert client is not None  # checked above
        theirs = self._clients.of(client)
        victims = theirs if queued_too else [u for u in theirs if u is playing]
        for utterance in victims:
            await self._speaker.cancel(utterance, "cancelled" if queued_too else "stopped")
        return replies.reply(done)

    def _client_of(self, who: str) -> int | None:
        if who == "self":
            return self.id
        if who.isdigit() and int(who) > 0:
            return int(who)
        return None

    def _playing(self) -> Utterance | None:
        """The utterance being heard now, if any."""
        return self._speaker.playback.current

    async def _pause(self, args: list[str]) -> bytes:
        """The output is paused, as `pause` pauses it, only when what plays is the
        target's (`all`: whatever plays); resumed if the client that paused it goes."""
        if (wrong := self._who_is_wrong(args)) is not None:
            return replies.reply(wrong)
        message = self._playing_message()
        if message is not None and self._targets(args[0].lower(), message.client):
            self._speaker.pause()
            self._clients.paused_by = self.id
            self._clients.notify(message, "pause")
        return replies.reply(replies.PAUSED)

    async def _resume(self, args: list[str]) -> bytes:
        if (wrong := self._who_is_wrong(args)) is not None:
            return replies.reply(wrong)
        message = self._playing_message()
        if self._clients.paused_by is not None and (
            message is None or self._targets(args[0].lower(), message.client)
        ):
            self._speaker.resume()
            self._clients.paused_by = None
            if message is not None:
                self._clients.notify(message, "resume")
        return replies.reply(replies.RESUMED)

    def _targets(self, who: str, client: int) -> bool:
        return who == "all" or self._client_of(who) == client

    def _playing_message(self) -> Message | None:
        current = self._playing()
        return self._clients.message(current.id) if current is not None else None

    def _who_is_wrong(self, args: list[str]) -> str | None:
        """The error for a STOP, CANCEL, PAUSE or RESUME that names no one it could."""
        if not args:
            return replies.MISSING_PARAMETER
        who = args[0].lower()
        if who == "all" or self._client_of(who) is not None:
            return None
        return replies.ID_NOT_EXIST if who.lstrip("-").isdigit() else replies.PARAMETER_INVALID

    async def _list(self, args: list[str]) -> bytes:
        return list_reply(self._voices, args)

    async def _get(self, args: list[str]) -> bytes:
        return get_reply(self.choices, args)

    async def _history(self, args: list[str]) -> bytes:
        return history_reply(self.id, args)

    async def _block(self, args: list[str]) -> bytes:
        what = args[0].lower() if args else ""
        if what == "begin":
            if self._in_block:
                return replies.reply(replies.ALREADY_INSIDE_BLOCK)
            self._in_block = True
            return replies.reply(replies.INSIDE_BLOCK)
        if what == "end":
            if not self._in_block:
                return replies.reply(replies.ALREADY_OUTSIDE_BLOCK)
            self._in_block = False
            return replies.reply(replies.OUTSIDE_BLOCK)
        return replies.reply(replies.PARAMETER_INVALID if what else replies.MISSING_PARAMETER)

    async def _help(self, args: list[str]) -> bytes:
        return help_reply()

    _COMMANDS: ClassVar[Mapping[str, Callable[[Connection, list[str]], Awaitable[bytes]]]] = {
        "speak": _speak,
        "char": _char,
        "key": _key,
        "sound_icon": _sound_icon,
        "set": _set,
        "stop": _stop,
        "cancel": _cancel,
        "pause": _pause,
        "resume": _resume,
        "list": _list,
        "get": _get,
        "history": _history,
        "block": _block,
        "help": _help,
    }
    _IN_BLOCK: ClassVar[frozenset[str]] = frozenset(
        {"speak", "char", "key", "sound_icon", "set", "block"}
    )
    """What speech-dispatcher takes between BLOCK BEGIN and BLOCK END (SET only in part:
    `NOT_IN_BLOCK`)."""
