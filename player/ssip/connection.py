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
from player.speech.priority import Priority
from player.speech.requests import Origin, Speaker
from player.speech.utterance import Utterance
from player.ssip import replies
from player.ssip.choices import NOT_IN_BLOCK, OWN_ONLY, SETTERS, Choices, voice_choice
from player.ssip.clients import Clients
from player.ssip.voices import (
    Mark,
    Voice,
    char_text,
    for_language,
    key_text,
    listing,
    ssml_text,
)

_LOGGER = logging.getLogger(__name__)

LINE_BYTES = 256 * 1024
"""The longest line read: a command, or one line of a message's text."""
MESSAGE_BYTES = 1024 * 1024
"""The longest message `SPEAK` takes (about 20 minutes of speech)."""
EVENTS_KEPT = 1000
"""Events kept for a client that is not reading them; the oldest go first."""
WRITE_TIMEOUT_S = 30.0
"""Seconds a reply may wait for a client to read; then the connection is closed."""
HELP = ("SPEAK CHAR KEY SOUND_ICON SET STOP CANCEL PAUSE RESUME", "LIST GET HISTORY BLOCK QUIT")

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
            self._clients.leave(self)
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
            await self._skip_line()
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
        text, marks = ssml_text(data) if self.choices.ssml else (data, [])
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

    def _queue(self, text: str, priority: Priority, marks: list[Mark] | None = None) -> bytes:
        choices = self.choices
        try:
            utterance = self._speaker.say(
                text, priority, Origin("ssip", choices.name), voice_choice(choices)
            )
        except SpeechError as err:
            _LOGGER.info("SSIP client %d: %s", self.id, err)
            return replies.reply(replies.NOTHING_TO_SAY)
        if utterance is None:
            return replies.reply(replies.NOTHING_TO_SAY)
        message = self._clients.sent(self, utterance, marks)
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
        if not self._icons:
            return replies.reply(replies.NO_SOUND_ICONS)
        sound = self._icons.get(args[0].lower())
        if sound is None:
            return replies.reply(replies.UNKNOWN_ICON)
        origin = Origin("ssip", self.choices.name)
        utterance = self._speaker.sound(sound, self.choices.priority, origin)
        return replies.reply(replies.SOUND_ICON_QUEUED, [str(self._clients.sent(self, utterance))])

    async def _set(self, args: list[str]) -> bytes:
        if len(args) < 3:
            return replies.reply(replies.MISSING_PARAMETER)
        scope, name, values = args[0].lower(), args[1].lower(), args[2:]
        setter = SETTERS.get(name)
        if setter is None:
            return replies.reply(replies.INVALID_COMMAND)
        if self._in_block and name in NOT_IN_BLOCK:
            return replies.reply(replies.NOT_ALLOWED_INSIDE_BLOCK)
        targets = self._scope(scope)
        if targets is None:
            invalid = replies.NO_SUCH_CLIENT if scope.isdigit() else replies.PARAMETER_INVALID
            return replies.reply(invalid)
        if name in OWN_ONLY and targets != [self.choices]:
            return replies.reply(replies.PARAMETER_INVALID)
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
        if name == "client_name":
            self._clients.named(self)
        elif name == "language" and answer == replies.LANGUAGE_SET:
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
        current = self._speaker.playback.current_id
        return self._speaker.find(current) if current is not None else None

    async def _pause(self, args: list[str]) -> bytes:
        if (wrong := self._who_is_wrong(args)) is not None:
            return replies.reply(wrong)
        self._speaker.pause()
        self._notify_playing("pause")
        return replies.reply(replies.PAUSED)

    async def _resume(self, args: list[str]) -> bytes:
        if (wrong := self._who_is_wrong(args)) is not None:
            return replies.reply(wrong)
        self._speaker.resume()
        self._notify_playing("resume")
        return replies.reply(replies.RESUMED)

    def _who_is_wrong(self, args: list[str]) -> str | None:
        """The error for a STOP, CANCEL, PAUSE or RESUME that names no one it could."""
        if not args:
            return replies.MISSING_PARAMETER
        who = args[0].lower()
        if who == "all" or self._client_of(who) is not None:
            return None
        return replies.ID_NOT_EXIST if who.lstrip("-").isdigit() else replies.PARAMETER_INVALID

    def _notify_playing(self, kind: str) -> None:
        current = self._speaker.playback.current_id
        message = self._clients.message(current) if current is not None else None
        if message is not None:
            self._clients.notify(message, kind)

    async def _list(self, args: list[str]) -> bytes:
        what = args[0].lower() if args else ""
        if what == "synthesis_voices":
            return replies.reply(replies.VOICE_LIST_SENT, listing(self._voices))
        if what == "voices":
            return replies.reply(replies.VOICE_LIST_SENT, sorted(_VOICE_TYPES_UPPER))
        if what == "output_modules":
            return replies.reply(replies.MODULE_LIST_SENT, ["speechkit"])
        if not what:
            return replies.reply(replies.MISSING_PARAMETER)
        return replies.reply(replies.PARAMETER_INVALID)

    async def _get(self, args: list[str]) -> bytes:
        what = args[0].lower() if args else ""
        choices = self.choices
        values = {
            "voice_type": choices.voice_type.upper(),
            "output_module": choices.output_module or "speechkit",
            "rate": str(choices.rate),
            "pitch": str(choices.pitch),
            "pitch_range": str(choices.pitch_range),
            "volume": str(choices.volume),
            "punctuation": choices.punctuation,
            "language": choices.language or "none",
            "synthesis_voice": choices.voice or "none",
        }
        if not what:
            return replies.reply(replies.MISSING_PARAMETER)
        if what not in values:
            return replies.reply(replies.PARAMETER_INVALID)
        return replies.reply(replies.GET_RETURNED, [values[what]])

    async def _history(self, args: list[str]) -> bytes:
        words = [a.lower() for a in args]
        if len(words) < 2:
            return replies.reply(replies.MISSING_PARAMETER)
        if words[:2] == ["get", "client_id"]:
            return replies.reply(replies.CLIENT_ID_SENT, [str(self.id)])
        if words[:2] == ["get", "client_list"]:
            rows = [
                f"{cid} {name} {int(cid in self._clients.peers)}"
                for cid, name in sorted(self._clients.names.items())
            ]
            return replies.reply(replies.CLIENT_LIST_SENT, rows)
        if words[0] not in ("get", "cursor", "say", "sort"):
            return replies.reply(replies.INVALID_COMMAND)
        # The history of messages speech-dispatcher keeps (and keeps off by default).
        return replies.reply(replies.NOT_YET_IMPLEMENTED)

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
        return replies.reply(replies.HELP_SENT, HELP)

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


_VOICE_TYPES_UPPER = frozenset(
    {"MALE1", "MALE2", "MALE3", "FEMALE1", "FEMALE2", "FEMALE3", "CHILD_MALE", "CHILD_FEMALE"}
)
