"""The host store (cache/host.py): cachelib semantics, a bound in bytes that evicts instead of failing, processes."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from cache.host import FILE_NAME, HostCache, HostFile, shared_file

MiB = 1024 * 1024


def _cache(path: Path, max_bytes: int = 4 * MiB) -> HostCache:
    return HostCache(HostFile(str(path), max_bytes))


def test_it_behaves_like_a_cachelib_cache(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    assert cache.get("a") is None and not cache.has("a")
    assert cache.set("a", {"any": ["picklable", 1]}) is True
    assert cache.get("a") == {"any": ["picklable", 1]} and cache.has("a")
    assert cache.add("a", "other") is False and cache.get("a") == {"any": ["picklable", 1]}
    assert cache.add("b", 2) is True and cache.get("b") == 2
    assert cache.delete("a") is True and cache.delete("a") is False
    assert cache.get("a") is None
    cache.set("forever", 1, timeout=0)
    cache.set("gone", 1, timeout=-1)
    assert (cache.get("forever"), cache.get("gone")) == (1, None)
    assert cache.add("gone", 3) is True and cache.get("gone") == 3  # an expired entry does not block add
    assert cache.clear() is True and cache.get("b") is None


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    first, second = _cache(tmp_path), _cache(tmp_path)
    first.set("k", "v1")
    assert second.get("k") == "v1"
    second.set("k", "v2")
    assert first.get("k") == "v2"


def test_the_file_never_outgrows_its_bound_it_evicts_the_oldest(tmp_path: Path) -> None:
    cache = _cache(tmp_path, max_bytes=1 * MiB)
    value = b"x" * 200
    for number in range(20_000):  # about 5 MiB of entries into a 1 MiB store
        assert cache.set(f"key-{number}", value) is True
    assert (tmp_path / FILE_NAME).stat().st_size <= 1 * MiB
    assert cache.get("key-19999") == value  # the newest are kept
    assert cache.get("key-0") is None  # the oldest went first
    kept = sum(cache.get(f"key-{number}") is not None for number in range(20_000))
    assert 1_000 < kept < 5_000


def test_a_full_store_evicts_bodies_before_small_entries(tmp_path: Path) -> None:
    entries = _cache(tmp_path, max_bytes=1 * MiB)
    bodies = entries.sibling("bodies")
    for number in range(1_000):
        entries.set(f"small-{number}", number)
    for number in range(2_000):  # about 4 MiB of bodies
        bodies.set(f"body-{number}", b"b" * 2048)
    assert all(entries.get(f"small-{number}") == number for number in range(1_000))
    assert bodies.get("body-1999") == b"b" * 2048 and bodies.get("body-0") is None
    assert (tmp_path / FILE_NAME).stat().st_size <= 1 * MiB


def test_a_store_that_cannot_be_opened_raises_for_callers_to_fall_back(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError):
        _cache(blocker / "store").get("k")


def test_processes_of_a_host_share_one_file_per_directory(tmp_path: Path) -> None:
    assert shared_file(str(tmp_path)) is shared_file(str(tmp_path))
    assert shared_file(str(tmp_path)) is not shared_file(str(tmp_path / "other"))


def _race_add(directory: str, start: multiprocessing.synchronize.Event, results: multiprocessing.Queue[bool]) -> None:
    cache = _cache(Path(directory))
    start.wait(10)
    results.put(cache.add("contested", os.getpid()))


def test_one_add_wins_among_racing_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    results: multiprocessing.Queue[bool] = context.Queue()
    processes = [context.Process(target=_race_add, args=(str(tmp_path), start, results)) for _ in range(6)]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=20) for _ in processes]
    for process in processes:
        process.join(10)
    assert outcomes.count(True) == 1
    assert _cache(tmp_path).get("contested") in {process.pid for process in processes}


def _use_after_fork(file: HostFile, results: multiprocessing.Queue[object]) -> None:
    results.put(HostCache(file).get("before-fork"))
    HostCache(file).set("from-child", "hello")


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    file = HostFile(str(tmp_path))
    HostCache(file).set("before-fork", "parent")
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_use_after_fork, args=(file, results))
    child.start()
    assert results.get(timeout=20) == "parent"
    child.join(10)
    assert child.exitcode == 0
    assert HostCache(file).get("from-child") == "hello"  # the parent's connection still works


def test_a_damaged_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        _cache(tmp_path).get("k")
