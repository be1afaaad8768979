import asyncio
import threading

import numpy as np
import pytest

from player.audio.telemetry import CallbackTiming
from player.errors import OutputError
from tests.harness.fake_stream import make_output

TIMEOUT = 5.0


def ones(n: int) -> np.ndarray:
    return np.full(n, 0.5, dtype=np.float32)


async def test_silence_until_the_prebuffer_is_reached():
    output, (stream,) = make_output(prebuffer_ms=100)  # 800 frames at 8 kHz
    output.begin_utterance()
    await output.write(ones(400), stall_timeout=1)
    assert not stream.pull(80).any()
    await output.write(ones(400), stall_timeout=1)
    assert (stream.pull(80) == 0.5).all()


async def test_end_of_utterance_plays_a_short_remainder():
    output, (stream,) = make_output(prebuffer_ms=100)
    output.begin_utterance()
    await output.write(ones(50), stall_timeout=1)
    output.end_utterance()
    block = stream.pull(80)
    assert (block[:50] == 0.5).all()
    assert not block[50:].any()
    assert output.underruns == 0


async def test_a_dry_spell_mid_utterance_is_one_underrun_of_silence():
    output, (stream,) = make_output(prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ones(100), stall_timeout=1)
    stream.pull(80)
    assert not stream.pull(80)[20:].any()  # 20 frames left, then silence
    for _ in range(4):
        assert not stream.pull(80).any()
    assert output.underruns == 1
    await output.write(ones(200), stall_timeout=1)
    assert (stream.pull(80) == 0.5).all()
    assert output.drain.expecting  # still the same utterance


async def test_flush_fades_out_and_drops_the_queue():
    output, (stream,) = make_output(fade_ms=5.0, prebuffer_ms=0)  # 40-frame fade
    output.begin_utterance()
    await output.write(ones(1000), stall_timeout=1)
    flushed = asyncio.create_task(output.flush(TIMEOUT))
    await asyncio.sleep(0)  # let flush post its request
    block = stream.pull(80)
    assert await asyncio.wait_for(flushed, TIMEOUT)
    left = block[:, 0]
    assert left[0] == pytest.approx(0.5)
    assert np.all(np.diff(left[:40]) <= 0)  # falls monotonically: no click
    assert left[39] == pytest.approx(0.0, abs=1e-6)
    assert not block[40:].any()
    assert output.ring.available() == 0
    assert not stream.pull(80).any()


async def test_writer_waits_for_room_instead_of_growing():
    output, (stream,) = make_output(buffer_ms=200, prebuffer_ms=0)  # 1600-frame ring
    output.begin_utterance()
    writer = asyncio.create_task(output.write(ones(2000), stall_timeout=TIMEOUT))
    await asyncio.sleep(0.05)
    assert not writer.done()
    assert output.ring.available() == output.ring.capacity
    while not writer.done():
        stream.pull(80)
        await asyncio.sleep(0.001)
    await asyncio.wait_for(writer, TIMEOUT)
    assert output.ring.write_pos == 2000


async def test_writer_gives_up_when_the_callback_stops():
    output, (stream,) = make_output(buffer_ms=200, prebuffer_ms=0)
    # It had got going and calls back no more from now on (a stream still starting may
    # be slow, and one silent for long is the watcher's: a lost device).
    output.stream.opened_at -= 60
    stream.pull(80)
    output.begin_utterance()
    with pytest.raises(OutputError, match="stopped taking audio"):
        await asyncio.wait_for(output.write(ones(2000), stall_timeout=0.1), TIMEOUT)


async def test_callback_never_raises():
    output, (stream,) = make_output(prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ones(100), stall_timeout=1)
    bad = np.full((10, 2), 7.0, dtype=np.float32)  # PortAudio asks for more than it gives
    stream.callback(bad, 80, None, None)
    assert output.stream.callback_failed
    assert not bad.any()
    assert not output.stream.healthy


async def test_device_underflows_are_counted_apart_from_ours():
    output, (stream,) = make_output(prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    stream.pull(80, underflow=True)
    stream.pull(80)
    stream.pull(80, underflow=True)
    assert output.stream.device_underruns == 2
    assert output.underruns == 0  # our ring never ran dry
    assert not output.stream.callback_failed


async def test_ensure_open_reopens_a_dead_stream():
    output, streams = make_output()
    streams[0].active = False
    output.stream.ensure_open()
    assert len(streams) == 2
    assert output.stream.healthy


async def test_the_callback_times_itself():
    output, (stream,) = make_output(prebuffer_ms=0)
    assert output.telemetry.callback_timing() == CallbackTiming(0, 0.0, 0.0, 0.0)
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    for _ in range(20):
        stream.pull(80)
    timing = output.telemetry.callback_timing()
    assert timing.calls == 20
    assert 0 < timing.median_us <= timing.p99_us <= timing.max_us


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, TIMEOUT), "timed out"


async def test_an_idle_stream_is_closed_and_opened_again_for_the_next_utterance():
    output, streams = make_output(prebuffer_ms=0, idle_stop_ms=50)
    busy = False
    idle = asyncio.create_task(output.stream.stop_when_idle(lambda: busy))
    try:
        await wait_for(streams[0].stopped)
        assert output.stream.healthy  # closed for idleness, not broken
        await output.stream.prepare()
        output.begin_utterance()
        assert len(streams) == 1  # prepared, but woken only once the request is out
        await output.stream.wake()
        await output.write(ones(160), stall_timeout=1)  # queues while the stream opens
        await asyncio.wait(output.stream.transitions(), timeout=TIMEOUT)
        assert len(streams) == 2
        await wait_for(streams[1].started)
        assert (streams[1].pull(80) == 0.5).all()
    finally:
        idle.cancel()


async def test_a_busy_or_speaking_output_is_not_stopped():
    output, (stream,) = make_output(prebuffer_ms=0, idle_stop_ms=20)
    busy = True
    idle = asyncio.create_task(output.stream.stop_when_idle(lambda: busy))
    try:
        output.begin_utterance()
        await output.write(ones(80), stall_timeout=1)
        # Several idle periods pass while busy; the loop must keep the stream running.
        for _ in range(5):
            await asyncio.sleep(0.02)
            assert stream.active
        busy = False
        output.end_utterance()
        stream.pull(80)
        await wait_for(stream.stopped)
    finally:
        idle.cancel()


async def test_stop_while_stopped_for_idleness_drops_the_ring_itself():
    output, (stream,) = make_output(prebuffer_ms=0, idle_stop_ms=20)
    idle = asyncio.create_task(output.stream.stop_when_idle(lambda: False))
    try:
        await wait_for(stream.stopped)
        output.ring.write(ones(40))  # as if an utterance queued audio, then was stopped
        assert await output.flush(TIMEOUT)
        assert output.ring.available() == 0
    finally:
        idle.cancel()


async def test_a_short_start_plays_after_twice_the_prebuffer_time_without_more_audio():
    output, (stream,) = make_output(prebuffer_ms=50)  # 400 frames, 50 ms
    output.begin_utterance()
    await output.write(ones(100), stall_timeout=1)  # then the input stalls
    assert not stream.pull(80).any()
    await asyncio.sleep(0.05)
    assert not stream.pull(80).any()  # a late chunk is still worth waiting for
    # The gate's timer was set before this sleep's, for the same total: it fires first.
    await asyncio.sleep(0.05)
    assert (stream.pull(80) == 0.5).all()
    assert output.drain.expecting  # the utterance goes on


async def test_after_a_dry_spell_playback_waits_for_the_refill():
    output, (stream,) = make_output(prebuffer_ms=100)  # 800 frames at 8 kHz
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    for _ in range(10):
        stream.pull(80)
    assert not stream.pull(80).any()  # dry
    assert output.underruns == 1
    # The source showed no lateness since, so the refill is the floor (a dry spell no
    # longer multiplies it): a trickle short of it stays held, so it plays in one piece.
    await output.write(ones(400), stall_timeout=1)
    assert not stream.pull(80).any()
    await output.write(ones(400), stall_timeout=1)
    assert (stream.pull(80) == 0.5).all()
    assert output.underruns == 1  # the hold was part of the same dry spell


async def test_the_end_of_the_utterance_releases_a_refill_hold():
    output, (stream,) = make_output(prebuffer_ms=100)
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    for _ in range(11):
        stream.pull(80)
    await output.write(ones(100), stall_timeout=1)
    assert not stream.pull(80).any()  # held: 100 frames are short of the refill
    output.end_utterance()
    assert (stream.pull(80) == 0.5).all()


async def test_a_new_utterance_is_not_held_by_the_last_ones_dry_spell():
    output, (stream,) = make_output(prebuffer_ms=100)
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    for _ in range(11):
        stream.pull(80)
    output.drain.expecting = False  # cancelled while held, as playback does
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    assert (stream.pull(80) == 0.5).all()


async def test_a_hold_counted_just_as_the_utterance_ended_does_not_stop_playback():
    output, (stream,) = make_output(prebuffer_ms=100)
    output.begin_utterance()
    await output.write(ones(800), stall_timeout=1)
    output.end_utterance()
    output.drain.holds += 1  # the callback, preempted mid-check, counts one after the end
    assert (stream.pull(80) == 0.5).all()


async def test_audio_taken_back_does_not_count_towards_the_start():
    output, (stream,) = make_output(prebuffer_ms=100)  # 800 frames
    output.begin_utterance()
    await output.write(ones(600), stall_timeout=1)
    assert await output.cut(200, 600, TIMEOUT)  # withdrawn, not yet jumped
    await output.write(ones(400), stall_timeout=1)  # 1000 in the ring, 600 to play
    assert not stream.pull(80).any()
    await output.write(ones(200), stall_timeout=1)
    assert (stream.pull(80) == 0.5).all()
