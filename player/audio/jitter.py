"""How much audio to hold before an utterance starts playing (or plays on after a dry
spell), judged from when its chunks arrived and how much each held.

Two measures, both per utterance:

- the *lateness spread*: fit the rate the source produces audio at (first to last arrival
  in a recent window) and see how far the arrivals stray from that steady schedule. A
  fast, steady source strays by timer noise only; a bursty one by its jitter.
- the *worst dry spell*: the longest any stretch of wall time has run past the audio that
  arrived during it, i.e. the held audio that would have ridden out everything seen so far
  had playback started just after any earlier chunk. This is rate-free, so it also counts
  the coarse cadence of a steady source that sends big chunks.

A steady source needs the floor (`prebuffer_ms`) and that dry spell, and one thing more:
a service that synthesises sentence by sentence may make the next sentence wait as long
as it made the first one (the *first-chunk delay*, from the request to the first chunk).
A source far ahead of real time wins that back within a short sentence; one that barely
outpaces it cannot, so the buffer must hold what it will not win back. A fast, steady
source therefore starts as soon as it did with a fixed prebuffer.

Only arrivals at `MOMENTS` different moments show a rate. Chunks let go in one burst
(the first one late, the rest due meanwhile right behind it) or two chunks, one of them
early, would make any source look many times faster than real time, and so steady and
sure to win its first-chunk delay back. Until then the source is taken to be no faster
than the time since the request says: it must hold a repeat of its first-chunk delay.

A bursty source is held until the audio covers the larger of `jitter_prebuffer_ms`, the
worst dry spell, and `SPREAD_FACTOR` times the spread: delays that pile up from chunk to
chunk show little in the first few chunks, and a gap, once heard, cannot be taken back.

After a dry spell the estimate starts over from the arrivals that follow it: the spell
may have been the input pausing (an LLM still writing its next sentence), and what comes
next says how the source behaves now. The refill covers the lateness seen since, but no
more than the source makes in `REFILL_SILENCE_S` at the rate it has kept up over the
utterance: the listener already hears a gap, and a long one (the whole bursty amount
again, at 1.2x real time 400 ms and more) is worse than the risk of a second short one.

Pure arithmetic on numbers the caller passes in: no clock, no I/O, so tests can feed it a
synthetic arrival schedule.
"""

from __future__ import annotations

import math
from collections import deque

STEADY_S = 0.020
"""Seconds of lateness spread still counted as steady: the event loop and the network
move a steady source's arrivals by a few milliseconds."""
SPREAD_FACTOR = 2.0
"""Audio held per second of lateness spread, for a bursty source: lateness seen in the
first chunks is a sample of what is to come, not its worst."""
BURST_S = 0.002
"""Seconds: arrivals this close together came in one burst. A burst tells no rate: its
chunks were held back and let go together, which a source running late does too."""
MOMENTS = 3
"""Bursts of arrivals needed before their rate says anything: two are one interval, and
one chunk that came early (or late) makes that look as fast (or slow) as it likes."""
REFILL_SILENCE_S = 0.15
"""Seconds: the most a refill after a dry spell waits for the source, at the rate it has
kept up over the utterance. The silence heard is that plus however late the chunk that
ended the dry spell was: together well under the 300 ms a listener takes for a pause."""
WAIT_FACTOR = 2.0
"""`wait_limit` in units of the floor's playing time: long enough that a chunk merely late
by a bursty source's jitter is waited for."""
SHORT_SENTENCE_S = 0.3
"""Seconds of audio in a short sentence: the least a source has to win back a repeat of
its first-chunk delay before the next sentence is due."""
WINDOW = 64
"""Arrivals the rate and the spread are fitted on: a few seconds of chunks, so a long
utterance is judged on how its source behaves now."""


class JitterEstimate:
    """One utterance's arrivals at a time; `need` is the audio to hold before playing.

    Used only from the asyncio side (the producer), never from the audio callback."""

    def __init__(self, rate: int, floor_frames: int, bursty_frames: int, most_frames: int) -> None:
        self._rate = rate
        self._floor = floor_frames
        self._bursty = max(bursty_frames, floor_frames)
        self._most = max(most_frames, floor_frames)
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._produced = 0.0  # seconds of audio so far in this utterance
        self._first: tuple[float, float] | None = None  # its first arrival: (at, produced)
        self._moments = 0  # bursts among the arrivals
        self._lowest = math.inf  # min over arrivals of (arrival time - audio produced)
        self._dry = 0.0  # seconds: the worst dry spell seen
        self._asked = math.nan  # monotonic: when the utterance was asked for
        self._begun = math.nan  # the same, until its first chunk came
        self._first_delay = 0.0  # seconds from then to its first chunk
        self.dry_spells = 0
        """Times the utterance ran dry while playing."""

    def begin(self, at: float) -> None:
        """A new utterance, asked for at monotonic time ``at``: forget the last one."""
        self._restart()
        self._asked = self._begun = at
        self._first_delay = 0.0
        self._produced = 0.0
        self._first = None
        self.dry_spells = 0

    def _restart(self) -> None:
        self._arrivals.clear()
        self._moments = 0
        self._lowest = math.inf
        self._dry = 0.0

    def arrived(self, at: float, frames: int) -> None:
        """A chunk of ``frames`` arrived at monotonic time ``at`` (seconds)."""
        if not math.isnan(self._begun):
            self._first_delay, self._begun = max(0.0, at - self._begun), math.nan
        if self._lowest < math.inf:
            # Had playback started just after the chunk with the lowest (time - audio),
            # this is how far this moment would have run past the audio held.
            self._dry = max(self._dry, (at - self._produced) - self._lowest)
        if not self._arrivals or at - self._arrivals[-1][0] >= BURST_S:
            self._moments += 1
        self._produced += frames / self._rate
        if self._first is None:
            self._first = (at, self._produced)
        self._lowest = min(self._lowest, at - self._produced)
        self._arrivals.append((at, self._produced))

    def ran_dry(self) -> None:
        """The utterance ran out of audio while playing: hold more before going on,
        judged on the arrivals from now on."""
        self.dry_spells += 1
        self._restart()

    @property
    def worst_dry_spell(self) -> float:
        """Seconds: the held audio that would have ridden out every wait seen since the
        utterance began (or last ran dry), whichever chunk playback had started after."""
        return self._dry

    @property
    def per_audio_s(self) -> float:
        """Wall seconds the source takes per second of audio (0: one burst so far)."""
        if len(self._arrivals) < 2:
            return 0.0
        return _wall_per_audio_s(self._arrivals[0], self._arrivals[-1])

    def _shown_per_audio_s(self) -> float:
        """`per_audio_s` once arrivals at `MOMENTS` moments show it; until then the time
        since the request per second of audio that came, which nothing can beat."""
        if self._moments >= MOMENTS:
            return self.per_audio_s
        if math.isnan(self._asked) or not self._arrivals:
            return 0.0
        return _wall_per_audio_s((self._asked, 0.0), self._arrivals[-1])

    def _kept_up_per_audio_s(self) -> float:
        """Wall seconds per second of audio from the utterance's first chunk to its
        latest, across any dry spells (0: one burst so far)."""
        if self._first is None or not self._arrivals:
            return 0.0
        return _wall_per_audio_s(self._first, self._arrivals[-1])

    @property
    def spread(self) -> float:
        """Seconds the arrivals strayed from the steady schedule their own rate implies."""
        if len(self._arrivals) < 3:
            return 0.0
        (t0, p0) = self._arrivals[0]
        per_audio_s = self.per_audio_s
        lateness = [t - t0 - (p - p0) * per_audio_s for t, p in self._arrivals]
        return max(lateness) - min(lateness)

    @property
    def bursty(self) -> bool:
        return self.spread > STEADY_S

    def need(self) -> int:
        """Frames to hold before (re)starting playback."""
        dry = round(self._dry * self._rate)
        spread = self.spread
        if spread <= STEADY_S:
            # What a repeat of the first-chunk delay would cost, less what the source wins
            # back within a short sentence.
            gain = SHORT_SENTENCE_S * (1 - min(1.0, self._shown_per_audio_s()))
            repeat = round(max(0.0, self._first_delay - gain) * self._rate)
            frames = max(self._floor, dry, repeat)
        else:
            frames = max(self._bursty, dry, round(SPREAD_FACTOR * spread * self._rate))
        if self.dry_spells:
            per_audio_s = self._kept_up_per_audio_s()
            if per_audio_s > 0:
                cap = round(REFILL_SILENCE_S / per_audio_s * self._rate)
                frames = max(self._floor, min(frames, cap))
        return min(self._most, frames)

    def wait_limit(self) -> float:
        """Seconds after the latest arrival to wait for `need` before playing what is held
        anyway: a source that sent nothing for that long has paused (a short text, a
        stalled input), and audio that is not coming must not hold back what came."""
        return WAIT_FACTOR * self._floor / self._rate


def _wall_per_audio_s(since: tuple[float, float], until: tuple[float, float]) -> float:
    """Wall seconds per second of audio between two (arrival time, audio produced) points."""
    (t0, p0), (t1, p1) = since, until
    return max(0.0, t1 - t0) / (p1 - p0) if p1 > p0 else 0.0
