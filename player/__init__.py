"""speechkit-player: speak text on the local sound card through SpeechKit v3 streaming synthesis."""

__version__ = "0.1.0"
