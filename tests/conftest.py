"""Shared pytest fixtures."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemons, clean_env
from tests.pulse import PulseServer, Recorder

# --- Audio harness: private sound server, recorder, thread-leak check --------------------
# Owned by the test-harness work (tests/pulse.py, tests/audio_analysis.py); append other
# fixtures below this block rather than inside it.

THREAD_FINISH_TIMEOUT = 2.0
"""Seconds a test's threads get to finish after it returns (a stream or reader that was told
to stop may still be unwinding) before the test is failed for leaking them."""


@pytest.fixture(autouse=True)
def verify_threads_ended() -> Iterator[None]:
    """Fail a test that leaves non-daemon threads running (as python-zeroconf does): a
    leaked thread outlives its test, and at exit a non-daemon one hangs the interpreter."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_FINISH_TIMEOUT
    leaked = []
    for thread in set(threading.enumerate()) - before:
        if thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaked.append(thread.name)
    if leaked:
        pytest.fail(f"test left threads running: {sorted(leaked)}", pytrace=False)


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
