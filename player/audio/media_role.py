"""The output stream's `media.role`: what it tells the sound server it is for, so the
server's policy can act on it (PulseAudio's module-role-ducking lowers music under it,
WirePlumber's role-based linking ducks or corks lower priorities, stream-restore keeps a
volume per role).

PortAudio has no say in stream properties. Its ALSA stream reaches the sound server
through ALSA's ``pulse`` plugin, which is libpulse, or through PipeWire's own ALSA plugin,
and both take properties from the process environment when they connect: libpulse reads
``PULSE_PROP_<key>`` when it creates a context (one per opened stream), PipeWire's plugin
parses ``PIPEWIRE_PROPS`` when it creates a stream. So the role goes into the daemon's own
environment before its first stream opens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

_LOGGER = logging.getLogger(__name__)

PULSE_VARIABLE = "PULSE_PROP_media.role"
"""libpulse: one property per variable, the key after the prefix."""
PIPEWIRE_VARIABLE = "PIPEWIRE_PROPS"
"""PipeWire: every property in one SPA-JSON object."""


def announce_role(role: str, environ: MutableMapping[str, str] | None = None) -> None:
    """Have streams opened from now on carry ``media.role = role`` ("" leaves the
    environment alone). ``role`` is a checked name (letters, digits, ``._-``), so it
    needs no quoting beyond the quotes around it. A ``PIPEWIRE_PROPS`` someone set for
    the daemon is theirs: it is kept, and the role is then only libpulse's."""
    env = os.environ if environ is None else environ
    if not role:
        return
    env[PULSE_VARIABLE] = role
    if PIPEWIRE_VARIABLE in env:
        _LOGGER.info(
            "%s is set, so PipeWire's ALSA plugin gets no media.role from the config",
            PIPEWIRE_VARIABLE,
        )
        return
    env[PIPEWIRE_VARIABLE] = f'{{ media.role = "{role}" }}'
