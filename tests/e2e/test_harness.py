"""Tests of the test harness itself: the signal measurements, and the sound server plus
recorder end to end with a real PortAudio stream."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.common import RATE
from tests.harness.audio_analysis import dominant_frequency, gaps, rms, sound_spans, tone
from tests.harness.pulse import PulseServer, Recorder

PLAYER_TIMEOUT = 15.0
"""Seconds for the player subprocess to start PortAudio, play, and exit."""


def _with_hole(hole_ms: float, *, at: float = 0.25, total: float = 0.5) -> np.ndarray:
    x = tone(440.0, total, RATE, phase=np.pi / 2)  # cosine: loud from the first sample
    start = round(at * RATE)
    x[start : start + round(hole_ms * RATE / 1000)] = 0.0
    return x


def test_silence_has_no_spans_or_gaps():
    x = np.zeros(RATE // 2, dtype=np.int16)
    assert sound_spans(x, RATE) == []
    assert gaps(x, RATE) == []
    assert rms(x) == 0.0


def test_below_threshold_counts_as_silence():
    assert sound_spans(tone(440.0, 0.5, RATE, amplitude=0.01), RATE) == []


def test_continuous_tone_is_one_span_without_gaps():
    x = tone(440.0, 0.5, RATE, phase=np.pi / 2)
    assert sound_spans(x, RATE) == [(0, len(x))]
    assert gaps(x, RATE) == []


def test_span_edges_are_sample_accurate_inside_silence():
    x = np.concatenate([np.zeros(1000), tone(440.0, 0.5, RATE, phase=np.pi / 2), np.zeros(777)])
    ((start, end),) = sound_spans(x, RATE)
    assert start == 1000
    assert abs(end - (1000 + RATE // 2)) <= 1


def test_20ms_hole_is_one_gap_of_20ms():
    x = _with_hole(20.0)
    ((start, length),) = gaps(x, RATE)
    assert abs(start - round(0.25 * RATE)) <= 2
    assert abs(length - round(0.020 * RATE)) <= 2
    assert len(sound_spans(x, RATE)) == 2


def test_5ms_hole_is_merged_into_one_span_but_still_a_gap():
    x = _with_hole(5.0)
    assert sound_spans(x, RATE, min_gap_ms=10.0) == [(0, len(x))]
    ((_, length),) = gaps(x, RATE)
    assert abs(length - round(0.005 * RATE)) <= 2


def test_int16_and_float_input_agree():
    x = _with_hole(20.0)
    as_int = np.round(x * 32767).astype(np.int16)
    assert gaps(as_int, RATE) == gaps(x, RATE)
    assert rms(as_int) == pytest.approx(rms(x), rel=1e-3)


def test_rms_of_sine():
    assert rms(tone(1000.0, 0.5, RATE, amplitude=0.5)) == pytest.approx(0.5 / np.sqrt(2), 1e-3)


@pytest.mark.parametrize("freq", [440.0, 1000.0, 1234.5])
def test_dominant_frequency_within_1hz(freq):
    x = tone(freq, 0.5, RATE, phase=0.3)
    assert dominant_frequency(x, RATE) == pytest.approx(freq, abs=1.0)


def test_dominant_frequency_of_silence_is_an_error():
    with pytest.raises(ValueError, match="silent"):
        dominant_frequency(np.zeros(1000), RATE)


# The player runs in a child process because PortAudio reads PULSE_SERVER when it
# initialises. It plays the tone, then silence until its stdin closes, as the daemon does:
# stopping the stream right after the tone could cut the tail still queued in the sink.
PLAYER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import sounddevice as sd

    rate, freq, seconds = 48000, 440.0, 0.5
    total = round(seconds * rate)
    pos = 0

    def callback(outdata, frames, time, status):
        global pos
        n = max(0, min(frames, total - pos))
        t = np.arange(pos, pos + n) / rate
        outdata[:n] = (0.5 * np.sin(2 * np.pi * freq * t))[:, None]
        outdata[n:] = 0
        pos += n

    with sd.OutputStream(
        device="pulse", samplerate=rate, channels=2, dtype="float32", callback=callback
    ):
        sys.stdin.read()
    """
)


def test_tone_played_through_pulse_is_recorded_whole(
    pulse: PulseServer, recorder: Recorder, tmp_path: Path
):
    first = recorder.sample_count()
    launched = time.monotonic()
    # stderr goes to a file: a pipe nobody reads while we wait could fill and stall it.
    err_path = tmp_path / "player.stderr"
    with (
        err_path.open("wb") as err_file,
        subprocess.Popen(
            [sys.executable, "-c", PLAYER],
            env=pulse.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        ) as player,
    ):

        def tone_over_or_player_gone(x: np.ndarray) -> bool:
            """True once 200 ms of silence follow the sound (or the player died)."""
            if player.poll() is not None:
                return True
            spans = sound_spans(x[first:], RATE)
            return bool(spans) and len(x) - first - spans[-1][1] >= RATE // 5

        try:
            x = recorder.wait_until(tone_over_or_player_gone, PLAYER_TIMEOUT)
        finally:
            # Closing stdin ends the player; kill it if it does not follow.
            try:
                player.communicate(b"", timeout=PLAYER_TIMEOUT)
            except subprocess.TimeoutExpired:
                player.kill()
                player.communicate()
    assert player.returncode == 0, err_path.read_text(errors="replace")

    x = x[first:]
    spans = sound_spans(x, RATE)
    assert len(spans) == 1, spans
    ((start, end),) = spans
    assert abs((end - start) / RATE - 0.5) <= 0.030
    assert gaps(x, RATE) == []
    assert dominant_frequency(x[start:end], RATE) == pytest.approx(440.0, abs=2.0)
    # Sample for sample what was played: nothing dropped, repeated or scaled. The tone's
    # first samples are below the threshold, so the span starts `lead` samples in.
    ref = tone(440.0, 0.5, RATE)
    lead = int(np.argmax(np.abs(ref) >= 0.02))
    played = x[start - lead : start - lead + len(ref)] / 32768
    assert len(played) == len(ref)
    assert np.max(np.abs(played - ref)) < 1e-3
    # The arrival clock agrees with the sample index: the tone came after the launch.
    assert recorder.index_at(launched) <= first + start
    assert recorder.arrival_time(first + start) > launched
