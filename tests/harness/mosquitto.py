"""A real Mosquitto broker for tests and bench/fleet: its own config, port and log in a
temporary folder, restartable on the same port (as a broker restarted by its service
manager comes back at the same address)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def mosquitto_path() -> str | None:
    """The broker's binary: Debian puts it in /usr/sbin, often not on a user's PATH."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Broker:
    """`mosquitto -c CONF` listening on 127.0.0.1:`port`, anonymous, without persistence."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="speechkit-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """As `[mqtt] broker` takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        binary = mosquitto_path()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        config = self.dir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # Started as root, mosquitto would switch to its own user, which cannot write
            # the log in our folder.
            f"user {getpass.getuser()}\n"
            f"log_dest file {self.dir / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            # A fleet's daemons all connect at once; the defaults are far above that.
            "max_queued_messages 10000\n"
        )
        self._proc = subprocess.Popen(
            [binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mosquitto did not listen within {START_TIMEOUT} s"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, waited for (killed after STOP_TIMEOUT)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stopped and started again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
