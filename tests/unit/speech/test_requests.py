"""The seam every front uses: whole texts, streamed ones, and what a complete one refuses."""

import pytest

from player.config import StreamSettings, TextSettings
from player.errors import PriorityError, TextError
from player.speech.playback import Playback
from player.speech.priority import Priority
from player.speech.requests import Origin, Speaker, priority_named
from tests.harness.fake_stream import make_output
from tests.unit.speech.test_playback import FakeSynthesis


def speaker() -> Speaker:
    output, _ = make_output(prebuffer_ms=0)
    return Speaker(Playback(output, FakeSynthesis()), StreamSettings(), TextSettings())


async def test_a_whole_text_is_queued_with_where_it_came_from():
    front = speaker()
    utterance = front.say("Hello there.", Priority.TEXT, Origin("ssip", "me:app:main"))
    assert utterance is not None
    assert (utterance.origin.front, utterance.origin.client) == ("ssip", "me:app:main")
    assert front.playback.queue_length == 1
    assert utterance.whole_text is not None
    assert front.say("**", Priority.TEXT, Origin("mqtt")) is None  # nothing to speak


@pytest.mark.parametrize("pieces", [["", "late"], ["**", "bold"], ["Hello. ", "more"]])
async def test_a_complete_saying_takes_nothing_after_its_first_piece(pieces):
    saying = speaker().saying(Priority.MESSAGE, Origin(), complete=True)
    await saying.feed(pieces[0])
    with pytest.raises(TextError, match="marked complete"):
        await saying.feed(pieces[1])
    await saying.feed("")  # an empty one is nothing


async def test_a_streamed_saying_waits_for_words_before_it_queues():
    front = speaker()
    announced = []

    async def announce(utterance):
        announced.append(utterance.id)

    saying = front.saying(Priority.MESSAGE, Origin(), announce=announce)
    await saying.feed("**")
    assert saying.utterance is None
    await saying.feed("bold** words ")
    assert saying.utterance is not None
    assert announced == [saying.utterance.id]
    assert front.playback.queue_length == 1


def test_priorities_are_speech_dispatcher_s_names():
    assert priority_named("") is Priority.MESSAGE
    assert priority_named("important") is Priority.IMPORTANT
    with pytest.raises(PriorityError, match="use one of important, message"):
        priority_named("IMPORTANT")
