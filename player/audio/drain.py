"""What the output callback does with the ring: gate, cuts with fades, pause.

Runs on PortAudio's thread. It copies frames, fills the rest with zeros and bumps plain
counters; it never blocks, logs, allocates an array or raises. The asyncio side steers it
only through plain attributes, each with one writer (noted per field), and polls the
ones the callback writes: waiting on the callback would mean the callback signalling,
which can block.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from player.audio.ring import Frames, RingBuffer


class Cut(NamedTuple):
    """Ring frames [start, end) that are not to be played."""

    start: int
    end: int
    seq: int
    """0: reached in the course of playing, jumped over without a sound. Otherwise it
    cuts what is playing now: faded out, then acknowledged in `Drain.cut_done`."""


class Drain:
    """The callback's state; `fill` is the only thing the callback calls."""

    def __init__(self, ring: RingBuffer, fade_frames: int) -> None:
        self.ring = ring
        self._fade_out = np.linspace(1.0, 0.0, max(1, fade_frames), dtype=np.float32)[:, np.newaxis]
        self._fade_in = np.ascontiguousarray(self._fade_out[::-1])
        self.gate_open = False  # asyncio (and a cut that empties the ring): play at all
        self.expecting = False  # asyncio: an utterance is still producing audio
        self.end_mark = 0  # asyncio: ring position where queued speech ends
        self.cuts: tuple[Cut, ...] = ()  # asyncio: sorted by start, not overlapping
        self.paused = False  # asyncio
        self.cut_done = 0  # callback: seq of the last cut of what was playing
        self.cut_at = 0  # callback: where that cut's fade ended (heard up to here)
        self.underruns = 0  # callback: times speech ran dry mid-utterance
        # A dry spell while `expecting` holds playback until the producer has refilled:
        # the callback counts the hold, asyncio releases it by catching up. Two counters,
        # one writer each, so neither side ever overwrites the other's word.
        self.holds = 0  # callback: dry spells that stopped playback to refill
        self.released = 0  # asyncio: holds up to this one are over
        self.frames_played = 0  # callback: frames of speech handed to the device
        self._starving = False  # callback
        self._silenced = False  # callback: faded out for a pause, to fade back in

    def reset(self) -> None:
        """Drop what the ring holds and any cuts: only while no callback runs."""
        self.ring.discard()
        self.gate_open = False
        self.cuts = ()

    def fill(self, out: Frames, frames: int) -> int:
        """Fill ``out`` (frames x channels); returns the frames of speech it holds."""
        if self.paused:
            self._pass_cuts()
            if not self._silenced:
                self._silenced = True
                # Fade out the next few frames without consuming them: resume replays
                # them fading in, so the pause loses nothing and never clicks.
                playing = self.gate_open and not self._held()
                k = self.ring.peek_into(out, len(self._fade_out)) if playing else 0
                out[:k] *= self._fade_out[:k]
                out[k:] = 0.0
            else:
                out.fill(0.0)
            return 0
        if not self.gate_open or self._held():
            self._pass_cuts()
            out.fill(0.0)
            return 0
        done = self._read(out, frames)
        if self._silenced:
            self._silenced = False
            k = min(done, len(self._fade_in))
            out[:k] *= self._fade_in[:k]
        self.frames_played += done
        if done == frames:
            self._starving = False
            return done
        out[done:] = 0.0
        ring = self.ring
        # A dry spell counts once, however many blocks it lasts.
        if (self.expecting or ring.read_pos < self.end_mark) and not self._starving:
            self.underruns += 1
            self._starving = True
            if self.expecting:
                self.holds += 1  # play on only once the producer has refilled
        return done

    def _held(self) -> bool:
        """Stopped to refill after a dry spell. Only while an utterance still produces:
        a hold counted just as it ended has nobody left to release it."""
        return self.expecting and self.holds != self.released

    def _read(self, out: Frames, frames: int) -> int:
        ring, done = self.ring, 0
        while done < frames:
            position, want = ring.read_pos, frames - done
            cut = self._next_cut(position)
            if cut is not None:
                if cut.start <= position:
                    if cut.seq:
                        return done + self._fade_cut(out, done, want, cut)
                    ring.skip_to(cut.end)
                    if ring.read_pos < cut.end:
                        break  # never: a cut ends where audio was already written
                    continue
                want = min(want, cut.start - position)
            n = ring.read_into(out[done:], want)
            done += n
            if n < want:
                break
        return done

    def _fade_cut(self, out: Frames, done: int, want: int, cut: Cut) -> int:
        """Fade out what is playing, drop the cut, and leave the rest of the block silent."""
        ring = self.ring
        position = ring.read_pos
        k = ring.read_into(out[done:], min(want, len(self._fade_out), cut.end - position))
        out[done : done + k] *= self._fade_out[:k]
        out[done + k :] = 0.0
        ring.skip_to(cut.end)
        self.cut_at = position + k
        self.cut_done = cut.seq
        self._starving = True  # the silence after a cut is not a dry spell
        if ring.available() == 0:
            self.gate_open = False  # the next utterance waits for its prebuffer again
        return k

    def _pass_cuts(self) -> None:
        """While nothing is heard, cuts that are due are simply jumped."""
        ring = self.ring
        while (cut := self._next_cut(ring.read_pos)) is not None and cut.start <= ring.read_pos:
            if cut.seq:
                self.cut_at = ring.read_pos
                self.cut_done = cut.seq
            ring.skip_to(cut.end)
            if ring.available() == 0:
                self.gate_open = False
            if ring.read_pos < cut.end:
                return  # never: a cut ends where audio was already written

    def _next_cut(self, position: int) -> Cut | None:
        for cut in self.cuts:
            if cut.end > position:
                return cut
        return None


def add_cut(cuts: tuple[Cut, ...], new: Cut, read_pos: int) -> tuple[Cut, ...]:
    """``cuts`` with ``new`` merged in, and those already passed left out."""
    merged: list[Cut] = []
    for cut in sorted((*cuts, new)):
        if cut.end <= read_pos or cut.end <= cut.start:
            continue
        if merged and cut.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Cut(last.start, max(last.end, cut.end), max(last.seq, cut.seq))
        else:
            merged.append(cut)
    return tuple(merged)
