"""The cache folder: atomic writes, the least recently played evicted, corrupt entries
dropped, and its numbers."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from player.cache.entry import Entry, encode
from player.cache.store import PhraseStore

pytestmark = pytest.mark.unit


def _entry(text: str, frames: int = 4800) -> Entry:
    return Entry(text, "piper:default", "marina", 48000, np.full(frames, 100, np.int16))


SIZE = len(encode(_entry("a")))


def _store(folder: Path, entries: float = 10) -> PhraseStore:
    store = PhraseStore(folder, int(SIZE * entries))
    store.open()
    return store


def test_a_saved_entry_loads_and_counts_as_a_hit(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.load("a" * 64) is None
    assert store.save("a" * 64, _entry("a"))
    loaded = store.load("a" * 64)
    assert loaded is not None
    assert loaded.text == "a"
    stats = store.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.size_bytes) == (1, 1, 1, SIZE)
    # Nothing but the entry is left in the folder: the temporary file was renamed.
    assert [p.name for p in tmp_path.iterdir()] == ["a" * 64 + ".phrase"]


def test_the_least_recently_played_go_first(tmp_path: Path) -> None:
    store = _store(tmp_path, entries=2.5)
    store.save("1", _entry("one"))
    store.save("2", _entry("two"))
    # Played long ago, both; then "1" again, now.
    for name in ("1", "2"):
        os.utime(tmp_path / f"{name}.phrase", (1_000_000, 1_000_000))
    assert store.load("1") is not None
    store.save("3", _entry("three"))
    assert sorted(p.stem for p in tmp_path.glob("*.phrase")) == ["1", "3"]
    assert store.stats().entries == 2


def test_an_entry_larger_than_the_cache_is_not_kept(tmp_path: Path) -> None:
    store = _store(tmp_path, entries=1.5)
    assert not store.save("big", _entry("big", frames=48000))
    assert not list(tmp_path.iterdir())


def test_a_corrupt_entry_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    store.save("x", _entry("x"))
    path = tmp_path / "x.phrase"
    path.write_bytes(path.read_bytes()[:-10])
    with caplog.at_level(logging.WARNING):
        assert store.load("x") is None
    assert not path.exists()
    assert "dropped a corrupt phrase cache entry x.phrase" in caplog.text
    assert store.stats().entries == 0


def test_opening_counts_what_is_there_and_removes_leftover_temporary_files(
    tmp_path: Path,
) -> None:
    first = _store(tmp_path)
    first.save("kept", _entry("kept"))
    (tmp_path / ".cut.123.456.tmp").write_bytes(b"half a phrase")
    again = _store(tmp_path)
    assert again.stats().entries == 1
    assert not (tmp_path / ".cut.123.456.tmp").exists()
    assert [item.entry.text for item in again.listing()] == ["kept"]


def test_clear_removes_everything(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for name in "abc":
        store.save(name, _entry(name))
    assert store.clear() == (3, 3 * SIZE)
    assert not list(tmp_path.iterdir())


def test_a_folder_that_cannot_be_written_is_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cache"
    store = _store(folder)
    # Gone, and a file in its place: no one (root included) writes in it.
    folder.rmdir()
    folder.write_text("")
    with caplog.at_level(logging.WARNING):
        assert not store.save("a", _entry("a"))
        assert not store.save("b", _entry("b"))
    # Once, not per phrase.
    assert caplog.text.count("cannot write the phrase cache") == 1
    assert store.stats().entries == 0


def test_saves_from_many_threads_keep_the_count_whole(tmp_path: Path) -> None:
    store = _store(tmp_path, entries=5.5)
    names = [f"{n:03d}" for n in range(60)]

    def save(name: str) -> bool:
        return store.save(name, _entry(name))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(save, names))
    on_disk = {p.stem for p in tmp_path.glob("*.phrase")}
    assert len(on_disk) == 5
    assert store.stats().entries == 5
    assert store.stats().size_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.phrase"))
    assert {item.entry.text for item in store.listing()} == on_disk


def test_a_touched_entry_outlives_older_ones(tmp_path: Path) -> None:
    store = _store(tmp_path, entries=2.5)
    store.save("1", _entry("one"))
    store.save("2", _entry("two"))
    for name in ("1", "2"):
        os.utime(tmp_path / f"{name}.phrase", (1_000_000, 1_000_000))
    assert store.touch("1") == 100
    assert store.touch("missing") is None
    store.save("3", _entry("three"))
    assert sorted(p.stem for p in tmp_path.glob("*.phrase")) == ["1", "3"]
