"""Turning one call's sentences into wire audio: Piper on a worker thread, loudness,
streaming resampling to the asked rate, LINEAR16 bytes (after a WAV header if asked)."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import TypeVar

import numpy as np
import soxr

from player.generated.speechkit.tts.v3 import tts_pb2
from player.local.engine import LocalVoice, PiperEngine, Samples
from player.local.service import OutputFormat

# Both RPCs answer with messages of the same shape (audio_chunk, text_chunk, start_ms,
# length_ms).
Response = TypeVar("Response", tts_pb2.StreamSynthesisResponse, tts_pb2.UtteranceSynthesisResponse)

DEFAULT_LUFS = -19.0
DEFAULT_PEAK = 0.7
_PEAK_LIMIT = 0.98
"""Loudness gain never pushes a sample past this (about -0.2 dBFS): no clipping."""
CHUNK_MS = 100
"""Longest audio chunk sent in one response."""


def loudness_gain(
    audio: Samples, loudness: tts_pb2.LoudnessNormalizationType.ValueType, volume: float
) -> float:
    """The gain that brings `audio` to the asked level, as SpeechKit reads `volume`:
    a peak level in (0, 1] for MAX_PEAK, else loudness in LUFS (approximated by RMS)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak < 1e-6:
        return 1.0
    if loudness == tts_pb2.MAX_PEAK:
        return (volume or DEFAULT_PEAK) / peak
    rms = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64))))
    gain = 10 ** (((volume or DEFAULT_LUFS) - 20 * math.log10(rms)) / 20)
    return min(gain, _PEAK_LIMIT / peak)


def wav_header(rate: int) -> bytes:
    """A mono 16-bit WAV header for a stream whose length is not known yet: sizes are
    the largest a RIFF file allows, as streaming writers do."""
    data_size = 0xFFFFFFFF - 36
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


class Voicing:
    """One call's audio: keeps the resampler's state and the byte position between
    sentences so the chunks' start_ms run on without a seam."""

    def __init__(
        self,
        engine: PiperEngine,
        voice: LocalVoice,
        output: OutputFormat,
        executor: Executor,
        *,
        speed: float = 1.0,
        volume: float = 0.0,
        loudness: tts_pb2.LoudnessNormalizationType.ValueType = tts_pb2.LUFS,
    ) -> None:
        self._engine = engine
        self._voice = voice
        self._output = output
        self._executor = executor
        self._speed = speed or 1.0
        self._volume = volume
        self._loudness = loudness
        self._resampler: soxr.ResampleStream | None = None
        self._header_due = output.wav
        self._sent = 0

    async def speak(self, sentence: str, last: bool) -> bytes:
        """LINEAR16 bytes for `sentence`. `last`: nothing follows for now, so the
        resampler gives up the tail it holds back (sentences end in silence, so starting
        afresh for the next one leaves no audible seam)."""
        audio = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._engine.synthesize, self._voice, sentence, self._speed
        )
        audio = audio * np.float32(loudness_gain(audio, self._loudness, self._volume))
        audio = self._resample(audio, last)
        return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    def _resample(self, audio: Samples, last: bool) -> Samples:
        if self._voice.rate == self._output.rate:
            return audio
        if self._resampler is None:
            self._resampler = soxr.ResampleStream(
                self._voice.rate, self._output.rate, 1, dtype="float32", quality="HQ"
            )
        out: Samples = self._resampler.resample_chunk(audio, last=last)
        if last:
            self._resampler = None
        return out

    def responses(self, pcm: bytes, text: str, kind: type[Response]) -> Iterator[Response]:
        """`kind` messages carrying `pcm`: pieces of at most CHUNK_MS, the text with the
        first, a WAV header before the call's first."""
        size = self._output.rate * 2 * CHUNK_MS // 1000
        for offset in range(0, len(pcm), size):
            piece = pcm[offset : offset + size]
            start = self._ms(self._sent)
            self._sent += len(piece) // 2
            data = piece
            if self._header_due:
                self._header_due = False
                data = wav_header(self._output.rate) + piece
            response = kind(
                audio_chunk=tts_pb2.AudioChunk(data=data),
                start_ms=start,
                length_ms=self._ms(self._sent) - start,
            )
            if offset == 0:
                response.text_chunk.text = text
            yield response

    def _ms(self, samples: int) -> int:
        return samples * 1000 // self._output.rate
