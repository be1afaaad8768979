"""The checks in order, one result each as it is known.

An invalid config is reported (one line per problem) and every other check is skipped:
run on defaults instead, they would test a device, endpoint or key the daemon will not
use, and a pass there would mislead. Every later check runs whatever the earlier ones
found; one that needs what failed says so and is skipped. A check that fails in a way
nobody foresaw is one problem line too: the report must reach its end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from player.config import ConfigError, load_settings
from player.doctor import cloud, daemon_check, local, sound
from player.doctor.checks import Check, Findings, ok, problem, skipped

_LOGGER = logging.getLogger(__name__)

CONFIG = "config"
Step = tuple[str, Callable[[Findings], Awaitable[Check]]]

STEPS: tuple[Step, ...] = (
    (sound.SOUND_SERVER, sound.sound_server),
    (sound.DEVICE, sound.audio_device),
    (sound.TONE, sound.test_tone),
    (cloud.CREDENTIALS, cloud.credentials),
    (cloud.DNS, cloud.dns),
    ("tls", cloud.connection),
    (cloud.SYNTHESIS, cloud.synthesis),
    (local.LOCAL_VOICE, local.local_voice),
    (daemon_check.DAEMON, daemon_check.daemon),
)
"""After the config, in the order a kiosk needs them: sound, then the cloud, the local
voice, and the daemon last (the doctor works without it)."""


async def run_checks(config: Path | None, environ: Mapping[str, str]) -> AsyncIterator[Check]:
    """Every check's result, in order, as each finishes."""
    try:
        settings = load_settings(config, environ)
    except ConfigError as err:
        fix = f"edit {config}" if config is not None else "edit the config"
        for error in err.errors:
            yield problem(CONFIG, error, fix)
        for name, _ in STEPS:
            yield skipped(name, "the config is invalid")
        return
    yield ok(CONFIG, str(config) if config is not None else "no config file: the defaults")
    found = Findings(settings, environ)
    for name, step in STEPS:
        yield await _guarded(name, step, found)


async def _guarded(
    name: str, step: Callable[[Findings], Awaitable[Check]], found: Findings
) -> Check:
    try:
        return await step(found)
    except Exception as err:
        _LOGGER.debug("the %s check failed", name, exc_info=True)
        return problem(name, f"the check itself failed: {type(err).__name__}: {err}", "run with -v")


def passed(checks: Iterable[Check]) -> bool:
    """No check found a problem (skipped ones are not used here, or follow from one that did)."""
    return all(check.verdict != "problem" for check in checks)
