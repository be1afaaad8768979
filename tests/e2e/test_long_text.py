"""End to end: an utterance longer than one SpeechKit call may carry is split at sentence
ends across consecutive calls, and heard whole, with no gap at the joins."""

from __future__ import annotations

import pytest

from tests.e2e.common import KEY, RATE, heard_and_quiet, record_until
from tests.harness import audio_analysis as aa
from tests.harness.daemon import Daemon, run_cli
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneScript, ToneServer

SENTENCE = "Sentence {:04d} is here, and it keeps the speaker talking for a while. "
TEXT = "".join(SENTENCE.format(n) for n in range(175))  # over 12000 characters
PLAY_TIMEOUT = 90.0
"""Seconds: the text is 12 s of audio, produced at 1.5x real time."""


@pytest.fixture
def tone_script() -> ToneScript:
    # 1 ms of tone per character: 12 s of audio, produced faster than it plays, so the
    # ring is full at each join and the next call's first chunk (0.2 s) must come in time.
    return ToneScript(api_key=KEY, ms_per_char=1.0, realtime_factor=1.5, first_chunk_delay=0.2)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("streamed", [False, True], ids=["argument", "stdin"])
async def test_12000_characters_are_heard_whole_with_no_gap_at_the_joins(
    tone_server: ToneServer, daemon: Daemon, recorder: Recorder, streamed: bool
) -> None:
    assert len(TEXT) > 12000
    start = recorder.sample_count()
    if streamed:  # `say -`: read as it arrives, like an LLM's answer piped in
        result = await run_cli(daemon.config, daemon.env, "say", "--wait", "-", stdin=TEXT.encode())
    else:
        result = await run_cli(daemon.config, daemon.env, "say", "--wait", TEXT)
    assert result.returncode == 0, result.stderr

    # say --wait has returned: every call was made; wait until each has finished.
    calls = await tone_server.wait_calls(len(tone_server.calls), PLAY_TIMEOUT)
    assert len(calls) >= 3, "12000 characters cannot fit in fewer than three calls"
    assert all(sum(map(len, call.texts)) <= 5000 for call in calls)
    assert "".join(t for call in calls for t in call.texts).split() == TEXT.split()
    # Each call but the last ends at a sentence end.
    assert all(call.texts[-1].rstrip().endswith(".") for call in calls)

    expected = sum(len(call.audio) for call in calls) / 2 / RATE
    x = (await record_until(recorder, heard_and_quiet(expected - 0.05), within=PLAY_TIMEOUT))[
        start:
    ]
    spans = aa.sound_spans(x, RATE)
    assert len(spans) == 1, [(a * 1000 // RATE, b * 1000 // RATE) for a, b in spans]
    heard = x[spans[0][0] : spans[0][1]]
    assert len(heard) / RATE == pytest.approx(expected, abs=0.05)
    longest_gap = max((length for _, length in aa.gaps(heard, RATE)), default=0)
    assert longest_gap <= 0.010 * RATE, f"a {longest_gap / RATE * 1000:.1f} ms gap"
