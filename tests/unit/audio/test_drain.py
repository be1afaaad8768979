import asyncio

import numpy as np

from tests.harness.fake_stream import make_output

TIMEOUT = 5.0


def ramp(start: int, n: int) -> np.ndarray:
    """Frames whose values say where they were in the input: easy to follow."""
    return (np.arange(start, start + n, dtype=np.float32) + 1) / 10000


async def test_pause_fades_out_keeps_the_position_and_resume_fades_back_in():
    output, (stream,) = make_output(fade_ms=5.0, prebuffer_ms=0)  # 40-frame fade
    output.begin_utterance()
    await output.write(ramp(0, 1000), stall_timeout=1)
    first = stream.pull(80)[:, 0]
    np.testing.assert_array_equal(first, ramp(0, 80))
    output.pause()
    faded = stream.pull(80)[:, 0]
    assert faded[0] > 0
    assert faded[39] < faded[0] / 10  # faded out over 40 frames
    assert not faded[40:].any()
    assert not stream.pull(80).any()  # quiet while paused
    assert output.ring.read_pos == 80  # nothing consumed
    output.resume()
    back = stream.pull(80)[:, 0]
    # The frames the fade-out touched come again, fading in, then the rest as they were.
    assert back[0] < ramp(80, 1)[0] / 10
    np.testing.assert_array_equal(back[40:], ramp(120, 40))


async def test_a_writer_waiting_on_a_paused_output_does_not_call_it_dead():
    output, (stream,) = make_output(prebuffer_ms=0, buffer_ms=200)  # 1600-frame ring
    output.begin_utterance()
    await output.write(ramp(0, 1600), stall_timeout=1)
    output.pause()
    writer = asyncio.create_task(output.write(ramp(1600, 100), stall_timeout=0.2))
    done, _ = await asyncio.wait([writer], timeout=0.5)
    assert not done  # still waiting for room, not failed after 0.2 s
    output.resume()
    stream.pull(80)
    stream.pull(80)
    await asyncio.wait_for(writer, TIMEOUT)


async def test_a_later_cut_is_jumped_without_a_seam():
    output, (stream,) = make_output(prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ramp(0, 400), stall_timeout=1)
    assert await output.cut(100, 300, TIMEOUT)  # returns at once: nothing to confirm
    block = np.concatenate([stream.pull(80)[:, 0] for _ in range(3)])
    np.testing.assert_array_equal(block[:100], ramp(0, 100))
    np.testing.assert_array_equal(block[100:200], ramp(300, 100))
    assert not block[200:].any()


async def test_cutting_what_plays_fades_it_and_keeps_what_follows_the_cut():
    output, (stream,) = make_output(fade_ms=5.0, prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ramp(0, 600), stall_timeout=1)
    stream.pull(80)
    cut = asyncio.create_task(output.cut(None, 400, TIMEOUT))
    await asyncio.sleep(0)  # let it post the request
    faded = stream.pull(80)[:, 0]
    assert await asyncio.wait_for(cut, TIMEOUT)
    assert output.flushed_at == 120  # 40 faded frames after the first block
    assert faded[39] < ramp(119, 1)[0] / 10
    assert not faded[40:].any()
    np.testing.assert_array_equal(stream.pull(80)[:, 0], ramp(400, 80))


async def test_a_cut_while_paused_is_confirmed_in_silence():
    output, (stream,) = make_output(prebuffer_ms=0)
    output.begin_utterance()
    await output.write(ramp(0, 600), stall_timeout=1)
    output.pause()
    stream.pull(80)
    cut = asyncio.create_task(output.flush(TIMEOUT))
    await asyncio.sleep(0)
    assert not stream.pull(80).any()
    assert await asyncio.wait_for(cut, TIMEOUT)
    assert output.ring.available() == 0
