"""Layer `config`: the settings (frozen dataclasses) and reading them from TOML.

Owns: `settings` (the dataclasses, each field with its unit), `loader` (TOML and the
environment, every error reported at once), `reader` (typed reads from one table),
`credentials` (secrets that never show in a message), `fleet` ([cache] and [mqtt]).
May import: `player.errors`, `player.limits`. Every other layer may import this one.
"""

from player.config.credentials import Secret
from player.config.loader import default_config, load_settings
from player.config.settings import (
    AudioSettings,
    CacheSettings,
    ChimeSettings,
    ControlSettings,
    LocalSettings,
    MetricsSettings,
    MqttSettings,
    Settings,
    SpeechKitSettings,
    SsipSettings,
    StreamSettings,
    TextSettings,
    VoiceSettings,
)
from player.errors import ConfigError

__all__ = [
    "AudioSettings",
    "CacheSettings",
    "ChimeSettings",
    "ConfigError",
    "ControlSettings",
    "LocalSettings",
    "MetricsSettings",
    "MqttSettings",
    "Secret",
    "Settings",
    "SpeechKitSettings",
    "SsipSettings",
    "StreamSettings",
    "TextSettings",
    "VoiceSettings",
    "default_config",
    "load_settings",
]
