"""The SSIP commands that only tell: LIST, GET, HISTORY and HELP, answered as
speech-dispatcher answers them."""

from __future__ import annotations

from player.ssip import replies
from player.ssip.choices import VOICE_TYPES, Choices
from player.ssip.voices import Voice, listing

HELP = ("SPEAK CHAR KEY SOUND_ICON SET STOP CANCEL PAUSE RESUME", "LIST GET HISTORY BLOCK QUIT")
MODULES = ("speechkit",)
"""What `LIST OUTPUT_MODULES` names: the daemon's one way of speaking."""


def list_reply(voices: list[Voice], args: list[str]) -> bytes:
    what = args[0].lower() if args else ""
    if what == "synthesis_voices":
        return replies.reply(replies.VOICE_LIST_SENT, listing(voices))
    if what == "voices":
        return replies.reply(replies.VOICE_LIST_SENT, [t.upper() for t in VOICE_TYPES])
    if what == "output_modules":
        return replies.reply(replies.MODULE_LIST_SENT, MODULES)
    return replies.reply(replies.PARAMETER_INVALID if what else replies.MISSING_PARAMETER)


def get_reply(choices: Choices, args: list[str]) -> bytes:
    values = {
        "voice_type": choices.voice_type.upper(),
        "output_module": choices.output_module or MODULES[0],
        "rate": str(choices.rate),
        "pitch": str(choices.pitch),
        "volume": str(choices.volume),
        "punctuation": choices.punctuation,
        "language": choices.language or "none",
    }
    what = args[0].lower() if args else ""
    if not what:
        return replies.reply(replies.MISSING_PARAMETER)
    if what not in values:
        return replies.reply(replies.PARAMETER_INVALID)
    return replies.reply(replies.GET_RETURNED, [values[what]])


def history_reply(client_id: int, args: list[str]) -> bytes:
    words = [a.lower() for a in args]
    if len(words) < 2:
        return replies.reply(replies.MISSING_PARAMETER)
    if words[:2] == ["get", "client_id"]:
        return replies.reply(replies.CLIENT_ID_SENT, [str(client_id)])
    if words[0] not in ("get", "cursor", "say", "sort"):
        return replies.reply(replies.INVALID_COMMAND)
    # The rest is speech-dispatcher's history of clients and messages, which it keeps off
    # by default and answers so: no client's names or texts are shown to another.
    return replies.reply(replies.NOT_YET_IMPLEMENTED)


def help_reply() -> bytes:
    return replies.reply(replies.HELP_SENT, HELP)
