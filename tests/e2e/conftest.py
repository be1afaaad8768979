"""The end-to-end fixtures: a private PulseAudio with a null sink, a recorder of what it
plays, real daemons started on it, and the tone server they speak to as SpeechKit. See
`tests/harness/`; the constants and helpers the tests share are in `common.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.common import KEY
from tests.harness.daemon import Daemon, Daemons, clean_env
from tests.harness.pulse import PulseServer, Recorder
from tests.harness.tone_server import ToneScript, ToneServer


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseServer]:
    """A private PulseAudio server with a null sink "speaker"; see tests/harness/pulse.py."""
    with PulseServer() as server:
        yield server


@pytest.fixture
def recorder(pulse: PulseServer) -> Iterator[Recorder]:
    """Records speaker.monitor; already receiving data when the test starts."""
    with Recorder(pulse) as rec:
        yield rec


@pytest.fixture
async def daemons(pulse: PulseServer, tmp_path: Path) -> AsyncIterator[Daemons]:
    """Starts real daemons on the private sound server; stops them all after the test."""
    daemons = Daemons(tmp_path, clean_env(pulse.env))
    yield daemons
    await daemons.stop_all()


@pytest.fixture
def own_pulse() -> Iterator[PulseServer]:
    """A sound server of the test's own, which it may kill, freeze or load modules into
    (the session's is shared)."""
    with PulseServer() as server:
        try:
            yield server
        finally:
            server.thaw()  # a frozen server cannot be stopped


@pytest.fixture
async def own_daemons(own_pulse: PulseServer, tmp_path: Path) -> AsyncIterator[Daemons]:
    """`daemons`, on `own_pulse`."""
    daemons = Daemons(tmp_path, clean_env(own_pulse.env))
    yield daemons
    own_pulse.thaw()  # a daemon on a frozen server cannot fade out and stop
    await daemons.stop_all()


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    """A file that passes the config's checks (it and its .json exist) but is no model."""
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model")
    Path(f"{model}.json").write_text("{}")
    return model


@pytest.fixture
def tone_script() -> ToneScript:
    """What `tone_server` does: audio as fast as it can. A module that wants other pacing
    defines its own `tone_script` fixture, which overrides this one."""
    return ToneScript(api_key=KEY)


@pytest.fixture
async def tone_server(tone_script: ToneScript) -> AsyncIterator[ToneServer]:
    """A tone server on a free local port, acting on `tone_script` (requiring `KEY`)."""
    async with ToneServer(tone_script) as server:
        yield server


@pytest.fixture
async def daemon(tone_server: ToneServer, daemons: Daemons) -> Daemon:
    """A daemon speaking through `tone_server` with `KEY`."""
    return await daemons.start(tone_server.address, KEY)
