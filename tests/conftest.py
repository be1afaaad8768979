"""What every test gets: its marker from its folder (`unit` or `e2e`), and a check that it
leaves no thread running. The end-to-end fixtures are in `tests/e2e/conftest.py`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`pytest -m unit` runs in seconds; `-m e2e` starts sound servers and daemons."""
    for item in items:
        kind = item.path.relative_to(TESTS).parts[0]
        if kind in ("unit", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))
