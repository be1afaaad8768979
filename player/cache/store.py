"""The cache folder: one file per phrase, named by its key's digest, the least recently
played evicted once the folder holds more than its limit.

Writes go to a temporary file that is renamed into place, so a power cut leaves either
the whole entry or none. The file's modification time is when it was last played.
Only the daemon writes the folder; its sizes are counted as it goes. Saves run on worker
threads while the loop reads: one lock keeps the count whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from player.cache.entry import CorruptEntry, Entry, Head, decode, encode, read_head

_LOGGER = logging.getLogger(__name__)

SUFFIX = ".phrase"
WARN_INTERVAL = 60.0
"""Seconds between warnings about a folder that cannot be written."""


@dataclass(frozen=True)
class Stats:
    hits: int
    """Utterances played from the cache since the daemon started."""
    misses: int
    """Utterances looked up and not found (synthesised instead)."""
    entries: int
    size_bytes: int
    max_bytes: int


@dataclass(frozen=True)
class Listed:
    entry: Head
    size_bytes: int
    last_played: float
    """Unix time, seconds."""


class PhraseStore:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._sizes: dict[str, int] = {}
        self._last_warning = -WARN_INTERVAL
        self._lock = threading.RLock()

    def open(self) -> None:
        """Creates the folder and counts what it holds; raises OSError if it cannot be
        created. Temporary files a power cut left behind are removed."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            for path in self.directory.iterdir():
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)
                elif path.suffix == SUFFIX:
                    with contextlib.suppress(OSError):
                        self._sizes[path.stem] = path.stat().st_size
            self._evict()

    def stats(self) -> Stats:
        with self._lock:
            size = sum(self._sizes.values())
            return Stats(self.hits, self.misses, len(self._sizes), size, self.max_bytes)

    def load(self, digest: str) -> Entry | None:
        """The entry, marked as just played; None when there is none (or it was corrupt,
        and is gone now)."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
            entry: Entry | None = decode(data)
        except FileNotFoundError:
            entry = None
        except OSError as exc:
            self._warn("cannot read %s: %s", path, exc.strerror)
            entry = None
        except CorruptEntry as exc:
            _LOGGER.warning("dropped a corrupt phrase cache entry %s: %s", path.name, exc)
            entry = None
            with self._lock:
                self._remove(digest)
        with self._lock:
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)
        return entry

    def touch(self, digest: str) -> int | None:
        """Marks a kept entry as just played (a warm that found it: it is still wanted);
        its duration in ms, or None if there is no readable entry."""
        path = self._path(digest)
        try:
            with path.open("rb") as file:
                head = read_head(file)
            os.utime(path)
        except (OSError, CorruptEntry):
            return None
        return head.duration_ms

    def save(self, digest: str, entry: Entry) -> bool:
        """Writes the entry (atomically), then evicts the least recently played entries
        over the limit. False when it is not kept: larger than the whole cache, or the
        folder cannot be written (warned about, at most once a minute)."""
        data = encode(entry)
        if len(data) > self.max_bytes:
            _LOGGER.info(
                "not caching a %d ms phrase: larger than [cache] max_mb", entry.duration_ms
            )
            return False
        path = self._path(digest)
        temporary = self.directory / f".{digest}.{threading.get_ident()}.{time.monotonic_ns()}.tmp"
        try:
            with temporary.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            self._warn("cannot write the phrase cache in %s: %s", self.directory, exc.strerror)
            return False
        # Best effort: some file systems cannot sync a folder, and the entry is there.
        with contextlib.suppress(OSError):
            _sync_folder(self.directory)
        with self._lock:
            self._sizes[digest] = len(data)
            self._evict()
            return digest in self._sizes

    def listing(self) -> list[Listed]:
        """Every entry, the most recently played first, from each file's header and
        description (their audio is not read)."""
        with self._lock:
            digests = list(self._sizes)
        found: list[Listed] = []
        for digest in digests:
            path = self._path(digest)
            try:
                with path.open("rb") as file:
                    head = read_head(file)
                    stat = os.fstat(file.fileno())
            except (OSError, CorruptEntry):
                continue
            found.append(Listed(head, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda item: item.last_played, reverse=True)

    def clear(self) -> tuple[int, int]:
        """Removes every entry: (entries, bytes) removed."""
        with self._lock:
            count, size = len(self._sizes), sum(self._sizes.values())
            for digest in list(self._sizes):
                self._remove(digest)
            return count, size

    def _evict(self) -> None:
        """Under the lock."""
        total = sum(self._sizes.values())
        if total <= self.max_bytes:
            return
        by_age: list[tuple[float, str]] = []
        for digest in self._sizes:
            try:
                by_age.append((self._path(digest).stat().st_mtime, digest))
            except OSError:
                by_age.append((0.0, digest))
        for _, digest in sorted(by_age):
            if total <= self.max_bytes:
                break
            total -= self._sizes[digest]
            self._remove(digest)

    def _remove(self, digest: str) -> None:
        self._sizes.pop(digest, None)
        with contextlib.suppress(OSError):
            self._path(digest).unlink(missing_ok=True)

    def _path(self, digest: str) -> Path:
        return self.directory / f"{digest}{SUFFIX}"

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_INTERVAL:
            self._last_warning = now
            _LOGGER.warning(message, *args)


def _sync_folder(directory: Path) -> None:
    """Makes the rename itself survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
