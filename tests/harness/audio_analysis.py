"""Measurements on recorded or synthetic mono audio: where the sound is, where it stops,
what pitch it has. Pure numpy, no I/O.

Integer input is read as full scale = the dtype's range (int16: 32768); float input as
full scale = 1.0. Levels and thresholds are fractions of full scale.

Loudness is judged per window of `window_ms` by its peak, so a sine's zero crossings never
count as silence; the edges of each sound are then placed on the first and last sample at
or above the threshold. A silence shorter than one window may therefore go unseen; one of
two windows or more is always found.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.integer] | npt.NDArray[np.floating]


def _as_float(x: Audio) -> npt.NDArray[np.float64]:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"expected mono (1-D) audio, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        full_scale = -float(np.iinfo(a.dtype.str).min)
        return np.asarray(a, dtype=np.float64) / full_scale
    return np.asarray(a, dtype=np.float64)


def _window(rate: int, window_ms: float) -> int:
    return max(1, round(rate * window_ms / 1000))


def _sound_runs(x: Audio, rate: int, threshold: float, window_ms: float) -> list[tuple[int, int]]:
    """Runs of loud windows as (start, end) samples, edges trimmed to loud samples."""
    loud = np.abs(_as_float(x)) >= threshold
    n = len(loud)
    if n == 0:
        return []
    w = _window(rate, window_ms)
    n_win = -(-n // w)
    padded = np.zeros(n_win * w, dtype=bool)
    padded[:n] = loud
    active = padded.reshape(n_win, w).any(axis=1)
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    runs = []
    for w_start, w_end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        lo, hi = int(w_start) * w, min(int(w_end) * w, n)
        idx = np.flatnonzero(loud[lo:hi])
        runs.append((lo + int(idx[0]), lo + int(idx[-1]) + 1))
    return runs


def sound_spans(
    x: Audio,
    rate: int,
    *,
    threshold: float = 0.02,
    window_ms: float = 2.0,
    min_gap_ms: float = 10.0,
) -> list[tuple[int, int]]:
    """Non-silent regions as (start_sample, end_sample), end exclusive; regions separated by
    less than `min_gap_ms` of silence are merged into one."""
    min_gap = rate * min_gap_ms / 1000
    spans: list[tuple[int, int]] = []
    for start, end in _sound_runs(x, rate, threshold, window_ms):
        if spans and start - spans[-1][1] < min_gap:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def gaps(
    x: Audio, rate: int, *, threshold: float = 0.02, window_ms: float = 2.0
) -> list[tuple[int, int]]:
    """Silent stretches strictly between the first and the last sound, as
    (start_sample, length_in_samples). Not merged: every detectable dropout is listed."""
    runs = _sound_runs(x, rate, threshold, window_ms)
    return [(a_end, b_start - a_end) for (_, a_end), (b_start, _) in pairwise(runs)]


def dominant_frequency(x: Audio, rate: int) -> float:
    """Frequency in Hz of the strongest spectral peak (Hann window, zero-padded FFT,
    parabolic interpolation on log magnitude). About 0.1 Hz on 0.5 s of a clean sine."""
    a = _as_float(x)
    if len(a) < 4:
        raise ValueError(f"need at least 4 samples, got {len(a)}")
    a = (a - a.mean()) * np.hanning(len(a))
    n_fft = 1 << (4 * len(a) - 1).bit_length()
    mag = np.abs(np.fft.rfft(a, n_fft))
    k = int(np.argmax(mag[1:-1])) + 1
    if mag[k] == 0.0:
        raise ValueError("silent input has no dominant frequency")
    left, mid, right = np.log(mag[k - 1 : k + 2] + 1e-300)
    denom = left - 2 * mid + right
    offset = 0.5 * (left - right) / denom if denom != 0 else 0.0
    return float((k + offset) * rate / n_fft)


def rms(x: Audio) -> float:
    """Root mean square level as a fraction of full scale; 0.0 for empty input."""
    a = _as_float(x)
    return float(np.sqrt(np.mean(a * a))) if len(a) else 0.0


def tone(
    freq: float, seconds: float, rate: int, amplitude: float = 0.5, phase: float = 0.0
) -> npt.NDArray[np.float32]:
    """A sine of `freq` Hz lasting round(seconds * rate) samples, peak `amplitude`."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
