"""A private PulseAudio server and a recorder of what it plays, for end-to-end audio tests.

`PulseServer` runs its own ``pulseaudio`` in a temporary directory with one null sink,
``speaker``. Child processes started with `PulseServer.env` play into it: ``pactl``,
``parec``, and PortAudio through ALSA's ``pulse`` device (sounddevice's device "pulse").
PortAudio reads ``PULSE_SERVER`` when it initialises, so a player under test must be a
child process started with that environment, not code in the pytest process.

`Recorder` captures ``speaker.monitor`` with ``parec`` and stamps every chunk with the
``time.monotonic()`` of its arrival, so a test can ask both *what* was played and, to within
the sink's latency (a few ms to ~30 ms here), *when*.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import numpy as np
import numpy.typing as npt

SINK = "speaker"
MONITOR = f"{SINK}.monitor"
RATE = 48000
"""Hertz, of the sink and of the recording."""
CHANNELS = 2
"""Of the sink; the recording is mono (PulseAudio mixes the monitor down)."""

_STOP_TIMEOUT = 5.0
"""Seconds a child process or the reader thread gets to finish before we kill or give up."""
_PACTL_TIMEOUT = 2.0
"""Seconds one ``pactl info`` probe may take."""
_POLL_INTERVAL = 0.05
"""Seconds between ``pactl info`` probes while the server starts."""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def end_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate `proc`, kill it if it does not exit in time, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=_STOP_TIMEOUT)


class PulseServer:
    """A private ``pulseaudio`` with a 48 kHz stereo null sink named ``speaker``, whose
    monitor gets every sample played, unscaled (100 % volume, no rewinds).

    Use as a context manager, or call `start` and `stop`. Not thread-safe; one owner.
    """

    sink = SINK
    monitor = MONITOR
    rate = RATE
    channels = CHANNELS

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def dir(self) -> Path:
        """The server's private runtime directory (holds the socket and ``pulse.log``)."""
        if self._dir is None:
            raise RuntimeError("PulseServer is not started")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.dir / "pulse.log"

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PULSE_SERVER", None)
        env.update(
            XDG_RUNTIME_DIR=str(self.dir),
            HOME=str(self.dir),
            PULSE_RUNTIME_PATH=str(self.dir / "pulse"),
        )
        return env

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus what a client process needs to reach this server."""
        env = self._base_env()
        env["PULSE_SERVER"] = f"unix:{self.dir / 'native'}"
        return env

    def start(self, timeout: float = 10.0) -> None:
        """Start the server; return once ``pactl info`` answers, or raise within `timeout` s."""
        if self._proc is not None:
            raise RuntimeError("PulseServer already started")
        self._dir = Path(tempfile.mkdtemp(prefix="speechkit-pulse-"))
        self._launch(timeout)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, keeping its runtime directory: clients
        lose it mid-stream, and `restart` brings it back at the same address."""
        if self._proc is None:
            raise RuntimeError("PulseServer is not running")
        self._proc.kill()
        self._proc.wait(timeout=_STOP_TIMEOUT)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def freeze(self) -> None:
        """SIGSTOP the server, as a hang would: clients keep their connections and get no
        answer, and PortAudio's callbacks stop while the stream still counts as active.
        `thaw` undoes it."""
        if self._proc is None:
            raise RuntimeError("PulseServer is not running")
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 10.0) -> None:
        """Start the server again in the same runtime directory, after `kill`."""
        if self._proc is not None:
            raise RuntimeError("PulseServer is running")
        self._launch(timeout)

    def _launch(self, timeout: float) -> None:
        self._log = self.log_path.open("ab")
        cmd = [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit=yes",
            "--use-pid-file=no",
            "--log-target=stderr",
            "-F",
            "/dev/null",
            f"--load=module-native-protocol-unix socket={self.dir / 'native'} auth-anonymous=1",
            # norewinds: when a stream connects, PulseAudio rewinds the sink to mix it in
            # sooner, but the monitor cannot take back what it already sent, so the first
            # ~8 ms of a stream that starts loud went missing from the recording.
            f"--load=module-null-sink sink_name={SINK} rate={RATE} channels={CHANNELS} norewinds=1",
            "--load=module-always-sink",
        ]
        try:
            self._proc = subprocess.Popen(
                cmd,
                env=self._base_env(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"pulseaudio exited with {self._proc.returncode}; log tail:\n"
                    + _tail(self.log_path)
                )
            try:
                probe = subprocess.run(
                    ["pactl", "info"],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=_PACTL_TIMEOUT,
                    check=False,
                )
                if probe.returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"pulseaudio did not answer `pactl info` within {timeout} s; log tail:\n"
                    + _tail(self.log_path)
                )
            # Bounded pause between probes; it also notices the server exiting.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=_POLL_INTERVAL)

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call more than once."""
        if self._proc is not None:
            end_process(self._proc)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Recorder:
    """Records ``speaker.monitor`` of a `PulseServer` as mono int16 at 48 kHz.

    A reader thread owns the ``parec`` pipe and appends each chunk, with the monotonic time
    it arrived, under `_cond`; every other method may be called from any thread.
    """

    rate = RATE

    def __init__(self, pulse: PulseServer, *, latency_ms: int = 10) -> None:
        self._pulse = pulse
        self._latency_ms = latency_ms
        self._cond = threading.Condition()
        self._data = bytearray()
        self._ends: list[int] = []
        """Byte count after each chunk; parallel to `_times`."""
        self._times: list[float] = []
        """time.monotonic() when each chunk arrived; non-decreasing."""
        self._eof = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 5.0) -> None:
        """Start ``parec``; return once its first bytes arrived (it takes ~1.2 s)."""
        if self._proc is not None:
            raise RuntimeError("Recorder already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [
                "parec",
                "-d",
                MONITOR,
                f"--rate={RATE}",
                "--format=s16le",
                "--channels=1",
                f"--latency-msec={self._latency_ms}",
                "--raw",
            ],
            env=self._pulse.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._thread = threading.Thread(target=self._read, name="recorder-reader")
        self._thread.start()
        with self._cond:
            flowing = self._cond.wait_for(lambda: bool(self._data) or self._eof, timeout)
            failed = self._eof and not self._data
        if not flowing or failed:
            why = "exited" if failed else f"sent nothing within {timeout} s"
            stderr = self._stderr_text()
            self.stop()
            raise RuntimeError(f"parec {why}; stderr: {stderr!r}")

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        try:
            # os.read returns whatever the pipe holds now, so each chunk is stamped on arrival.
            while chunk := os.read(fd, 65536):
                now = time.monotonic()
                with self._cond:
                    self._data += chunk
                    self._ends.append(len(self._data))
                    self._times.append(now)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def _samples_locked(self) -> npt.NDArray[np.int16]:
        n = len(self._data) // 2 * 2
        return np.frombuffer(bytes(self._data[:n]), dtype="<i2").astype(np.int16)

    def samples(self) -> npt.NDArray[np.int16]:
        """A copy of everything recorded so far."""
        with self._cond:
            return self._samples_locked()

    def sample_count(self) -> int:
        with self._cond:
            return len(self._data) // 2

    def arrival_time(self, sample_index: int) -> float:
        """Monotonic time the chunk holding that sample arrived: an upper bound on when the
        sample was played (plus the sink's few ms of latency)."""
        with self._cond:
            last_byte = 2 * sample_index + 1
            if sample_index < 0 or last_byte >= len(self._data):
                raise IndexError(
                    f"sample {sample_index} not recorded yet ({len(self._data) // 2} so far)"
                )
            return self._times[bisect.bisect_right(self._ends, last_byte)]

    def index_at(self, t: float) -> int:
        """Number of samples that had arrived by monotonic time `t`."""
        with self._cond:
            i = bisect.bisect_right(self._times, t)
            return (self._ends[i - 1] if i else 0) // 2

    def wait_until(
        self, pred: Callable[[npt.NDArray[np.int16]], bool], timeout: float
    ) -> npt.NDArray[np.int16]:
        """Return the recording once `pred(recording)` holds; raise TimeoutError after
        `timeout` s. `pred` runs outside the lock, so it never delays the arrival stamps."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                x = self._samples_locked()
                eof = self._eof
            if pred(x):
                return x
            if eof:
                raise RuntimeError(
                    f"parec stopped after {len(x)} samples before the condition held; "
                    f"stderr: {self._stderr_text()!r}"
                )
            with self._cond:
                grew = self._cond.wait_for(
                    functools.partial(self._grown_past, len(x)),
                    deadline - time.monotonic(),
                )
            if not grew:
                raise TimeoutError(
                    f"condition {getattr(pred, '__name__', pred)!r} did not hold within "
                    f"{timeout} s; {len(x)} samples ({len(x) / RATE:.3f} s) recorded, "
                    f"peak {int(np.abs(x.astype(np.int32)).max(initial=0))}/32768"
                )

    def _grown_past(self, n_samples: int) -> bool:
        """Under `_cond`: more than `n_samples` arrived, or no more will."""
        return len(self._data) // 2 > n_samples or self._eof

    def stop(self) -> None:
        """Stop ``parec`` and join the reader thread. Safe to call more than once."""
        if self._proc is not None:
            end_process(self._proc)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("recorder reader thread did not finish after parec exited")
            self._thread = None
        if self._proc is not None:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
