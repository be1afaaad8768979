"""One daemon run drawn as a timeline: text sent, chunks arriving, sound on the sink."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
