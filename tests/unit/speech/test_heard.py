"""player.speech.heard: a track's ring positions when part of its audio was taken back."""

from __future__ import annotations

from player.speech.heard import Track
from player.speech.utterance import Utterance


async def track_with_a_hole() -> Track:
    """1000 frames at ring 100..1100 kept, then 1100..1300 taken back, then 500 more
    written at 1300..1800."""
    track = Track(Utterance(), start=100, written=1500)
    track.holes.append((1100, 1300))
    track.spoken = [(100, "One. "), (1300, "Two. ")]
    return track


async def test_positions_of_kept_audio_step_over_the_hole() -> None:
    track = await track_with_a_hole()
    assert track.end == 1800
    assert track.position(0) == 100
    assert track.position(999) == 1099
    assert track.position(1000) == 1300  # the first frame written after the hole
    assert track.position(1499) == 1799


async def test_frames_heard_leave_the_hole_out() -> None:
    track = await track_with_a_hole()
    assert track.heard(600)[0] == 500
    assert track.heard(1200)[0] == 1000  # inside the hole: jumped, never played
    assert track.heard(1400)[0] == 1100
    assert track.heard(5000)[0] == 1500
    assert track.finished_text(1400) == "One. "
    assert track.finished_text(1800) == "One. Two. "


async def test_a_track_cut_before_its_first_text_chunk_has_heard_no_text() -> None:
    # An important utterance may interrupt a message whose call is still connecting.
    track = Track(Utterance(), start=100, written=500)
    assert track.finished_text(600) == ""
