import numpy as np
import pytest

from player.audio.ring import RingBuffer


def frames(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_empty_ring_reads_nothing_and_leaves_output_alone():
    ring = RingBuffer(4)
    out = np.full(3, 9.0, dtype=np.float32)
    assert ring.read_into(out, 3) == 0
    assert out.tolist() == [9.0, 9.0, 9.0]
    assert ring.available() == 0
    assert ring.free() == 4


def test_exactly_full_refuses_more():
    ring = RingBuffer(4)
    assert ring.write(frames(1, 2, 3, 4)) == 4
    assert ring.free() == 0
    assert ring.write(frames(5)) == 0
    out = np.zeros(4, dtype=np.float32)
    assert ring.read_into(out, 4) == 4
    assert out.tolist() == [1, 2, 3, 4]


def test_partial_write_takes_what_fits():
    ring = RingBuffer(4)
    assert ring.write(frames(1, 2, 3, 4, 5, 6)) == 4
    assert ring.available() == 4


def test_write_and_read_wrap_around_the_end():
    ring = RingBuffer(4)
    ring.write(frames(1, 2, 3))
    out = np.zeros(4, dtype=np.float32)
    assert ring.read_into(out, 2) == 2
    assert ring.write(frames(4, 5, 6)) == 3  # positions 3, 0, 1: wraps
    assert ring.read_into(out, 4) == 4
    assert out.tolist() == [3, 4, 5, 6]
    assert ring.read_pos == ring.write_pos == 6


def test_mono_is_spread_to_every_channel():
    ring = RingBuffer(8)
    ring.write(frames(0.5, -0.5))
    out = np.zeros((3, 2), dtype=np.float32)
    assert ring.read_into(out, 3) == 2
    assert out.tolist() == [[0.5, 0.5], [-0.5, -0.5], [0.0, 0.0]]


def test_discard_drops_everything_written():
    ring = RingBuffer(8)
    ring.write(frames(1, 2, 3))
    assert ring.discard() == 3
    assert ring.available() == 0
    assert ring.free() == 8


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        RingBuffer(0)
