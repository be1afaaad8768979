"""The ways a user could speak a text, each measured on the same sink.

Contenders 1 and 2 are plain clients a user might write: synchronous grpc, sounddevice
in this process (so the bench sets PULSE_SERVER before importing it). The daemon is the
real one, in a subprocess, through its control API and through its CLI.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator

import grpc
import numpy as np

from player.generated.speechkit.tts.v3 import tts_pb2, tts_service_pb2_grpc

RATE = 48000


def _requests(text: str) -> Iterator[tts_pb2.StreamSynthesisRequest]:
    spec = tts_pb2.AudioFormatOptions(
        raw_audio=tts_pb2.RawAudio(
            audio_encoding=tts_pb2.RawAudio.LINEAR16_PCM, sample_rate_hertz=RATE
        )
    )
    yield tts_pb2.StreamSynthesisRequest(options=tts_pb2.SynthesisOptions(output_audio_spec=spec))
    for sentence in text.split(". "):
        piece = sentence if sentence.endswith(".") else sentence + ". "
        yield tts_pb2.StreamSynthesisRequest(synthesis_input=tts_pb2.SynthesisInput(text=piece))


def _responses(address: str, key: str, text: str) -> Iterator[bytes]:
    with grpc.insecure_channel(address) as channel:
        stub = tts_service_pb2_grpc.SynthesizerStub(channel)
        metadata = (("authorization", f"Api-Key {key}"),)
        for response in stub.StreamSynthesis(_requests(text), metadata=metadata):
            if response.audio_chunk.data:
                yield response.audio_chunk.data


def seed_way(address: str, key: str, text: str) -> float:
    """Contender 1, the how-to's way: collect every chunk, write a WAV, then play it.
    Returns the monotonic time it started."""
    import sounddevice as sd

    started = time.monotonic()
    audio = b"".join(_responses(address, key, text))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(audio)
    buffer.seek(0)
    with wave.open(buffer) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    sd.play(samples, RATE, device="pulse", blocking=True)
    return started


def naive_stream(address: str, key: str, text: str) -> float:
    """Contender 2: a blocking `write` of each chunk as it arrives."""
    import sounddevice as sd

    started = time.monotonic()
    carry = b""
    with sd.OutputStream(samplerate=RATE, channels=1, dtype="int16", device="pulse") as stream:
        for data in _responses(address, key, text):
            data = carry + data
            whole = len(data) // 2 * 2
            carry = data[whole:]
            stream.write(np.frombuffer(data[:whole], dtype="<i2"))
    return started
