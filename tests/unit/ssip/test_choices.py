import pytest

from player.speech.priority import Priority
from player.ssip import replies
from player.ssip.choices import NOTIFICATIONS, SETTERS, Choices, unquote


def set_(choices: Choices, name: str, *args: str) -> str:
    return SETTERS[name](choices, list(args))


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("100", replies.RATE_SET),
        ("-100", replies.RATE_SET),
        ("101", replies.RATE_TOO_HIGH),
        ("-101", replies.RATE_TOO_LOW),
        ("fast", replies.NOT_A_NUMBER),
    ],
)
def test_rate_takes_speech_dispatchers_scale(value, answer):
    choices = Choices()
    assert set_(choices, "rate", value) == answer
    assert choices.rate == (int(value) if answer == replies.RATE_SET else 0)


def test_volume_is_checked_with_speech_dispatchers_own_reply_texts():
    assert set_(Choices(), "volume", "200") == "413 ERR PITCH TOO HIGH"


def test_a_priority_is_one_of_the_five_in_any_case():
    choices = Choices()
    assert set_(choices, "priority", "IMPORTANT") == replies.PRIORITY_SET
    assert choices.priority is Priority.IMPORTANT
    assert set_(choices, "priority", "urgent") == replies.UNKNOWN_PRIORITY
    assert choices.priority is Priority.IMPORTANT


def test_notifications_switch_on_and_off_one_kind_or_all():
    choices = Choices()
    assert set_(choices, "notification", "all", "on") == replies.NOTIFICATION_SET
    assert choices.notifications == frozenset(NOTIFICATIONS)
    assert set_(choices, "notification", "begin", "off") == replies.NOTIFICATION_SET
    assert "begin" not in choices.notifications
    # speech-dispatcher's own answers: 514 for the value, 316 for the kind.
    assert set_(choices, "notification", "begin", "maybe") == replies.PARAMETER_INVALID
    assert set_(choices, "notification", "tea", "on") == replies.COULDNT_SET_NOTIFICATION


def test_on_off_settings_refuse_anything_else():
    choices = Choices()
    assert set_(choices, "ssml_mode", "on") == replies.SSML_MODE_SET
    assert choices.ssml
    assert set_(choices, "ssml_mode", "yes") == replies.NOT_ON_OFF
    assert choices.ssml


def test_a_client_name_may_come_quoted():
    choices = Choices()
    assert set_(choices, "client_name", '"root:spd-say:main"') == replies.CLIENT_NAME_SET
    assert choices.name == "root:spd-say:main"
    assert unquote('"') == '"'
