"""What an SSIP client has chosen with `SET`: its name, priority, voice and the rest, as
speech-dispatcher checks and answers them. A message takes the choices its client had
when it was sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from player.speech.priority import Priority
from player.speech.requests import VoiceChoice
from player.ssip import replies

NOTIFICATIONS = ("begin", "end", "cancel", "pause", "resume", "index_marks")
"""The event types a client may ask for (`SET self NOTIFICATION <type> on`)."""
VOICE_TYPES = (
    "male1", "male2", "male3", "female1", "female2", "female3", "child_male", "child_female",
)  # fmt: skip
"""speech-dispatcher's voice types, in the order `LIST VOICES` gives them."""
PUNCTUATION = frozenset({"all", "some", "most", "none"})
CAP_LET_RECOGN = frozenset({"none", "spell", "icon"})
SCALE = (-100, 100)
"""RATE, PITCH, PITCH_RANGE and VOLUME: speech-dispatcher's scale, 0 the default."""


@dataclass
class Choices:
    """One client's choices; `SET all` and `SET <id>` change other clients' too."""

    name: str = "unknown:unknown:unknown"
    """`user:application:component`, as the client named itself."""
    priority: Priority = Priority.TEXT
    """speech-dispatcher's default for a client that sets none."""
    language: str = ""
    """The language asked for (`en`, `ru-RU`); empty for the configured voice's."""
    voice: str = ""
    """A voice picked by name (`SYNTHESIS_VOICE`); empty for the configured one."""
    voice_type: str = "male1"
    rate: int = 0
    pitch: int = 0
    pitch_range: int = 0
    volume: int = 100
    """speech-dispatcher's default: full volume, the configured voice's own."""
    punctuation: str = "some"
    cap_let_recogn: str = "none"
    spelling: bool = False
    ssml: bool = False
    """The message text is SSML (`<speak>` markup)."""
    output_module: str = ""
    notifications: frozenset[str] = field(default_factory=frozenset)
    """The event types this client is sent."""


def _scale(
    attribute: str, ok: str, too_high: str, too_low: str
) -> Callable[[Choices, list[str]], str]:
    def apply(choices: Choices, args: list[str]) -> str:
        value = _integer(args[0])
        if value is None:
            return replies.NOT_A_NUMBER
        if value > SCALE[1]:
            return too_high
        if value < SCALE[0]:
            return too_low
        setattr(choices, attribute, value)
        return ok

    return apply


def _one_of(
    attribute: str, allowed: frozenset[str], ok: str, invalid: str = replies.PARAMETER_INVALID
) -> Callable[[Choices, list[str]], str]:
    def apply(choices: Choices, args: list[str]) -> str:
        value = args[0].lower()
        if value not in allowed:
            return invalid
        setattr(choices, attribute, value)
        return ok

    return apply


def _on_off(attribute: str, ok: str) -> Callable[[Choices, list[str]], str]:
    def apply(choices: Choices, args: list[str]) -> str:
        value = _switch(args[0])
        if value is None:
            return replies.NOT_ON_OFF
        setattr(choices, attribute, value)
        return ok

    return apply


def _priority(choices: Choices, args: list[str]) -> str:
    try:
        choices.priority = Priority(args[0].lower())
    except ValueError:
        return replies.UNKNOWN_PRIORITY
    return replies.PRIORITY_SET


def _client_name(choices: Choices, args: list[str]) -> str:
    name = unquote(" ".join(args))
    if name.count(":") != 2:  # user:application:component, as speech-dispatcher checks
        return replies.COULDNT_SET_CLIENT_NAME
    choices.name = name
    return replies.CLIENT_NAME_SET


def _text(attribute: str, ok: str) -> Callable[[Choices, list[str]], str]:
    """A value taken as sent: the rest of the line, its quotes dropped."""

    def apply(choices: Choices, args: list[str]) -> str:
        setattr(choices, attribute, unquote(" ".join(args)))
        return ok

    return apply


def _notification(choices: Choices, args: list[str]) -> str:
    if len(args) < 2:
        return replies.MISSING_PARAMETER
    kind, switch = args[0].lower(), _switch(args[1])
    if kind == "all":
        kinds = set(NOTIFICATIONS)
    elif kind in NOTIFICATIONS:
        kinds = {kind}
    else:
        return replies.COULDNT_SET_NOTIFICATION
    if switch is None:
        return replies.PARAMETER_INVALID  # speech-dispatcher's answer here, not 513
    current = set(choices.notifications)
    choices.notifications = frozenset(current | kinds if switch else current - kinds)
    return replies.NOTIFICATION_SET


def _ignored(ok: str) -> Callable[[Choices, list[str]], str]:
    """Settings speech-dispatcher takes that change nothing here (debugging, history)."""

    def apply(choices: Choices, args: list[str]) -> str:
        return ok

    return apply


SETTERS: Mapping[str, Callable[[Choices, list[str]], str]] = {
    "client_name": _client_name,
    "priority": _priority,
    "language": _text("language", replies.LANGUAGE_SET),
    "synthesis_voice": _text("voice", replies.VOICE_SET),
    "voice_type": _one_of(
        "voice_type", frozenset(VOICE_TYPES), replies.VOICE_SET, replies.COULDNT_SET_VOICE
    ),
    "rate": _scale("rate", replies.RATE_SET, replies.RATE_TOO_HIGH, replies.RATE_TOO_LOW),
    "pitch": _scale("pitch", replies.PITCH_SET, replies.PITCH_TOO_HIGH, replies.PITCH_TOO_LOW),
    "pitch_range": _scale(
        "pitch_range",
        replies.PITCH_RANGE_SET,
        replies.PITCH_RANGE_TOO_HIGH,
        replies.PITCH_RANGE_TOO_LOW,
    ),
    "volume": _scale("volume", replies.VOLUME_SET, replies.VOLUME_TOO_HIGH, replies.VOLUME_TOO_LOW),
    "punctuation": _one_of("punctuation", PUNCTUATION, replies.PUNCTUATION_SET),
    "cap_let_recogn": _one_of("cap_let_recogn", CAP_LET_RECOGN, replies.CAP_LET_RECOGN_SET),
    "spelling": _on_off("spelling", replies.SPELLING_SET),
    "ssml_mode": _on_off("ssml", replies.SSML_MODE_SET),
    "output_module": _text("output_module", replies.OUTPUT_MODULE_SET),
    "notification": _notification,
    "pause_context": _ignored(replies.PAUSE_CONTEXT_SET),
    "debug": _ignored(replies.DEBUGGING_SET),
    "history": _ignored(replies.NOT_IMPLEMENTED),
}
"""SET's parameters, lower case, each checking its value and answering."""
OWN_ONLY = {
    "client_name": replies.PARAMETER_INVALID,
    "notification": replies.PARAMETER_INVALID,
    "priority": replies.COULDNT_SET_PRIORITY,
}
"""Parameters a client sets for itself only (`SET self`), and the answer to `SET all` or
`SET <id>` of one, as speech-dispatcher gives it."""
NOT_IN_BLOCK = frozenset({"priority", "client_name", "output_module", "spelling"})
"""Parameters speech-dispatcher does not let change between BLOCK BEGIN and BLOCK END."""


def voice_choice(choices: Choices) -> VoiceChoice | None:
    """What a client's choices ask of the configured voice; None when nothing."""
    choice = VoiceChoice(
        voice=choices.voice, rate=choices.rate, pitch=choices.pitch, volume=choices.volume
    )
    return None if choice == VoiceChoice() else choice


def _integer(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def _switch(text: str) -> bool | None:
    return {"on": True, "off": False}.get(text.lower())


def unquote(text: str) -> str:
    """A value as sent, or without the double quotes some clients put around it."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text
