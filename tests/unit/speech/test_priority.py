import pytest

from player.cli import PRIORITIES
from player.config import StreamSettings
from player.speech.priority import Fate, Priority, fate
from player.speech.schedule import Schedule
from player.speech.utterance import Utterance

IMP, M, T, N, P = (Priority(p) for p in PRIORITIES)
QUIET = StreamSettings(pause_ms=10_000, idle_close_s=3600)


def test_the_cli_offers_every_priority():
    assert tuple(p.value for p in Priority) == PRIORITIES


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (IMP, IMP, Fate.KEEP),
        (M, IMP, Fate.POSTPONE),
        (T, IMP, Fate.DROP),
        (N, IMP, Fate.DROP),
        (P, IMP, Fate.POSTPONE),
        (M, M, Fate.KEEP),
        (T, M, Fate.DROP),
        (T, T, Fate.DROP),
        (M, T, Fate.KEEP),
        (N, T, Fate.DROP),
        (IMP, T, Fate.KEEP),
        # Notifications and progress push nothing aside: they are dropped or held instead.
        (T, N, Fate.KEEP),
        (N, N, Fate.KEEP),
        (P, P, Fate.KEEP),
    ],
)
def test_what_a_new_utterance_does_to_an_older_one(old, new, expected):
    assert fate(old, new) is expected


async def test_important_ones_go_first_and_an_interrupted_message_heads_the_rest():
    schedule = Schedule()
    m1, t1, i1, i2, m2 = (Utterance(QUIET, p) for p in (M, T, IMP, IMP, M))
    for u in (m1, t1, i1, i2):
        schedule.add(u)
    schedule.add(m2, resumed=True)
    progress = Utterance(QUIET, P)
    assert schedule.hold(progress) is None
    assert [schedule.pop() for _ in range(6)] == [i1, i2, m2, m1, t1, progress]
    assert schedule.pop() is None


async def test_a_newer_held_progress_replaces_the_older():
    schedule = Schedule()
    first, second = Utterance(QUIET, P), Utterance(QUIET, P)
    schedule.hold(first)
    assert schedule.hold(second) is first
    assert schedule.pop() is second


async def drain(utterance: Utterance) -> str:
    """What one synthesis call would send, as text (forces left out)."""
    return "".join([p async for p in utterance.pieces() if isinstance(p, str)])


async def test_a_rewound_utterance_starts_again_at_the_cut_sentence_and_goes_on():
    utterance = Utterance(QUIET)
    utterance.feed("One two three. Four five six. Seven")
    utterance.close()
    assert await drain(utterance) == "One two three. Four five six. Seven "
    # "One two three." and "Four" heard in full: the cut sentence is the second.
    utterance.rewind(len("Onetwothree.Four"))
    assert await drain(utterance) == "Four five six. Seven "
    # Within that run, nothing finished: it starts at the same sentence again.
    utterance.rewind(0)
    assert await drain(utterance) == "Four five six. Seven "


async def test_a_rewind_after_everything_was_heard_resumes_with_what_comes_next():
    utterance = Utterance(QUIET)
    utterance.feed("Heard all of it. ")
    pieces = utterance.pieces()
    assert await anext(pieces) == "Heard all of it. "
    utterance.rewind(len("Heardallofit."))
    utterance.feed("And more.")
    utterance.close()
    assert await drain(utterance) == "And more. "
