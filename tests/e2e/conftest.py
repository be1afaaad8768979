"""The end-to-end fixtures: a private PulseAudio with a null sink, a recorder of what it
plays, and real daemons started on it. See `tests/harness/`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness.daemon import Daemons, clean_env
from tests.harness.pulse import PulseServer, Recorder


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseServer]:
    """A private PulseAudio server with a null sink "speaker"; see tests/pulse.py."""
    with PulseServer() as server:
        yield server


@pytest.fixture
def recorder(pulse: PulseServer) -> Iterator[Recorder]:
    """Records speaker.monitor; already receiving data when the test starts."""
    with Recorder(pulse) as rec:
        yield rec


# --- End of audio harness block ------------------------------------------------------------


@pytest.fixture
async def daemons(pulse: PulseServer, tmp_path: Path) -> AsyncIterator[Daemons]:
    """Starts real daemons on the private sound server; stops them all after the test."""
    daemons = Daemons(tmp_path, clean_env(pulse.env))
    yield daemons
    await daemons.stop_all()
