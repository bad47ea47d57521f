"""The listing cache: versions in the shared store, bodies in each process, never a stale listing."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cache.host import HostCache, HostFile
from cache.listing import VersionedListingCache
from cache.memo import BodyMemo


class RefusingHostCache(HostCache):
    """The real host store, except that writes can be made to fail the way cachelib backends report it: False."""

    refuse_writes = False

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        if self.refuse_writes:
            return False
        return super().set(key, value, timeout)


def _worker(path: Path, memo_bytes: int = 1024) -> VersionedListingCache:
    """One worker's listing cache over a host store shared with the others (its own memo, its own connection)."""
    stamps = HostCache(HostFile(str(path)))
    return VersionedListingCache(stamps, 300, 1024, max_bytes=memo_bytes, bodies=stamps.sibling("bodies"))


def test_a_failed_version_write_deletes_the_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = RefusingHostCache(HostFile(str(tmp_path)))
    listing = VersionedListingCache(backend, timeout=300, max_entry_bytes=1024, max_bytes=1024)
    user_id = uuid.uuid4()
    version, body = listing.get(user_id)
    assert body is None
    listing.put(user_id, version, b'[{"text": "old"}]')
    assert listing.get(user_id) == (version, b'[{"text": "old"}]')

    backend.refuse_writes = True
    with caplog.at_level(logging.WARNING, logger="cache.listing"):
        listing.invalidate(user_id)

    assert "deleting it" in caplog.text
    assert backend.get(f"v:{user_id}") is None
    backend.refuse_writes = False
    new_version, body = listing.get(user_id)
    assert body is None
    assert new_version not in ("", version)


def test_a_successful_invalidation_retires_the_version(tmp_path: Path) -> None:
    listing = _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = listing.get(user_id)
    listing.put(user_id, version, b"[]")
    listing.invalidate(user_id)
    new_version, body = listing.get(user_id)
    assert (new_version != version, body) == (True, None)


def test_a_kept_body_is_never_served_after_another_workers_write(tmp_path: Path) -> None:
    reader, writer = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = reader.get(user_id)
    reader.put(user_id, version, b"[old]")
    assert reader.get(user_id) == (version, b"[old]")  # from the reader's own memory
    writer.invalidate(user_id)
    new_version, body = reader.get(user_id)
    assert (new_version != version, body) == (True, None)


def test_a_body_one_worker_read_is_served_and_remembered_by_another(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = first.get(user_id)
    first.put(user_id, version, b"[first]")
    assert second.memo_bytes == 0
    assert second.get(user_id) == (version, b"[first]")  # the same stamp, the shared body
    assert second.memo_bytes == len(b"[first]")  # remembered: the next hit reads the stamp alone


def test_a_shared_body_past_its_lifetime_is_not_remembered(tmp_path: Path) -> None:
    worker = _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = worker.get(user_id)
    # Stored 301 s ago by another worker (the store's own expiry is a separate, later check).
    HostCache(HostFile(str(tmp_path)), table="bodies").set(f"l:{user_id}", (version, time.time() - 301, b"[aged]"))
    assert worker.get(user_id) == (version, b"[aged]")
    assert worker.memo_bytes == 0


def test_a_shared_body_under_another_version_is_a_miss(tmp_path: Path) -> None:
    reader, writer = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = writer.get(user_id)
    writer.put(user_id, version, b"[before]")
    writer.invalidate(user_id)
    new_version, body = reader.get(user_id)
    assert (new_version != version, body) == (True, None)


def test_a_body_kept_under_a_version_retired_meanwhile_is_never_served(tmp_path: Path) -> None:
    reader, writer = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = reader.get(user_id)  # read before the query...
    writer.invalidate(user_id)  # ...a write commits meanwhile...
    reader.put(user_id, version, b"[before the write]")  # ...and the query's result is kept under the old stamp
    new_version, body = reader.get(user_id)
    assert (new_version != version, body) == (True, None)


def test_a_body_larger_than_an_entry_is_not_kept(tmp_path: Path) -> None:
    listing = _worker(tmp_path, memo_bytes=4096)
    user_id = uuid.uuid4()
    version, _ = listing.get(user_id)
    listing.put(user_id, version, b"x" * 1025)
    assert listing.get(user_id) == (version, None)


def test_an_expired_version_is_replaced_once_and_then_kept(tmp_path: Path) -> None:
    backend = HostCache(HostFile(str(tmp_path)))
    listing = VersionedListingCache(backend, 300, 1024, max_bytes=1024)
    user_id = uuid.uuid4()
    backend.set(f"v:{user_id}", "expired", timeout=-10)  # expired ten seconds ago; its row is still there
    assert backend.get(f"v:{user_id}") is None
    first = listing.version(user_id)
    assert first not in ("", "expired")
    assert [listing.version(user_id) for _ in range(3)] == [first] * 3
    listing.put(user_id, first, b"[kept]")
    assert listing.get(user_id) == (first, b"[kept]")


def test_an_unusable_store_is_bypassed_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    listing = VersionedListingCache(HostCache(HostFile(str(blocker / "cache"))), 300, 1024, max_bytes=1024)
    user_id = uuid.uuid4()
    assert listing.get(user_id) == ("", None)


def test_memo_evicts_least_recently_used_beyond_its_byte_bound() -> None:
    memo = BodyMemo(max_bytes=10)
    users = [uuid.uuid4() for _ in range(3)]
    memo.put(users[0], "v", b"aaaa", ttl=60)
    memo.put(users[1], "v", b"bbbb", ttl=60)
    assert memo.get(users[0], "v") == b"aaaa"  # now most recently used
    memo.put(users[2], "v", b"cccc", ttl=60)
    assert memo.size_bytes == 8
    assert (memo.get(users[0], "v"), memo.get(users[1], "v"), memo.get(users[2], "v")) == (b"aaaa", None, b"cccc")
    memo.put(users[1], "v", b"x" * 11, ttl=60)  # larger than the whole bound: not kept
    assert memo.get(users[1], "v") is None


def test_memo_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = BodyMemo(max_bytes=10)
    user_id = uuid.uuid4()
    memo.put(user_id, "v", b"soon", ttl=30)
    memo.put(user_id, "w", b"late", ttl=90)
    memo.put(user_id, "x", b"dead", ttl=0)  # no lifetime left: never kept
    real_monotonic = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + 60)
    assert (memo.get(user_id, "v"), memo.get(user_id, "w"), memo.get(user_id, "x")) == (None, b"late", None)
    assert memo.size_bytes == 4


def test_forgetting_a_user_deletes_the_shared_body(tmp_path: Path) -> None:
    listing = _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = listing.get(user_id)
    listing.put(user_id, version, b'[{"text": "private"}]')
    bodies = HostCache(HostFile(str(tmp_path)), table="bodies")
    assert bodies.get(f"l:{user_id}") is not None
    listing.forget(user_id)
    assert bodies.get(f"l:{user_id}") is None
    assert listing.get(user_id)[1] is None
