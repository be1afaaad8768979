"""What a process costs, read from /proc: CPU seconds, resident memory, open file
descriptors, threads, and which processes it started."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its waited-for children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def _status(pid: int, key: str) -> int | None:
    """The first number of `key:` in /proc/PID/status; None if the line is missing."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def rss_mb(pid: int) -> float:
    """Resident memory, megabytes (MiB)."""
    kib = _status(pid, "VmRSS")
    return float("nan") if kib is None else kib / 1024


def threads(pid: int) -> int:
    """Threads of `pid`, the main one included."""
    return _status(pid, "Threads") or 0


def fds(pid: int) -> int:
    """Open file descriptors of `pid` (sockets, pipes, files)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """The processes `pid`'s threads started that are still running."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended while we looked
            continue
    return found


def cmdline(pid: int) -> list[str]:
    """`pid`'s command line, one argument an item."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
