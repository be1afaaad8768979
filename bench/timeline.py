"""Runs drawn over time: one daemon utterance (text sent, chunks arriving, sound on the
sink), and a soak's processes (memory, file descriptors, threads, faults)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np


def _pyplot() -> ModuleType:
    """matplotlib.pyplot, drawing to files only (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(
    path: Path,
    started: float,
    chunk_times: list[float],
    chunk_bytes: list[int],
    recording: np.ndarray,
    recording_times: np.ndarray,
    underruns: int,
    rate: int,
) -> None:
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    t_chunks = (np.asarray(chunk_times) - started) * 1000
    audio_s = np.cumsum(chunk_bytes) / 2 / rate
    top.step(t_chunks, audio_s, where="post", label="audio received by the daemon (s)")
    top.vlines(t_chunks, 0, audio_s.max() * 0.05, color="grey", lw=0.5, label="chunks")
    top.axvline(0, color="green", ls="--", label="text sent")
    top.set_ylabel("audio sent (s)")
    top.legend(loc="upper left", fontsize=8)
    t_rec = (recording_times - started) * 1000
    bottom.fill_between(t_rec, recording.astype(np.float32) / 32768, color="tab:blue", lw=0)
    bottom.axvline(0, color="green", ls="--")
    bottom.set_ylabel("level heard on the sink")
    bottom.set_xlabel(f"ms since the request (underruns counted by the callback: {underruns})")
    fig.suptitle("speechkit-player: one utterance through the control API")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


METRICS = (("rss_mb", "RSS (MB)"), ("fds", "open fds"), ("threads", "threads"))


def resources(
    path: Path,
    series: Mapping[str, Sequence[tuple[float, Mapping[str, float]]]],
    faults: Sequence[tuple[float, str]],
    title: str,
) -> None:
    """Per process (`series`: name -> (minutes, {metric: value})), each of METRICS over
    time, with a dotted line at each fault (minutes, name)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(11, 8), sharex=True)
    for ax, (metric, label) in zip(axes, METRICS, strict=True):
        for name, points in series.items():
            ax.plot([t for t, _ in points], [v[metric] for _, v in points], marker=".", label=name)
        for minute, _ in faults:
            ax.axvline(minute, color="grey", ls=":", lw=0.7)
        ax.set_ylabel(label)
    top = axes[0]
    ymax = top.get_ylim()[1]
    for minute, name in faults:
        top.text(minute, ymax, name, rotation=90, fontsize=6, va="top", ha="right", color="grey")
    top.legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel("minutes since the soak began (dotted: faults)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
