"""The listing cache when its backend cannot write: a failed invalidation must never leave a stale listing."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from cachelib.file import FileSystemCache

from cache.listing import VersionedListingCache
from cache.memo import BodyMemo


class FullDiskCache(FileSystemCache):
    """The real filesystem backend, except that writes fail the way it reports a full disk: False."""

    refuse_writes = False

    def set(self, key: str, value: Any, timeout: Any = None, mgmt_element: bool = False) -> bool:
        if self.refuse_writes and not mgmt_element:
            return False
        return super().set(key, value, timeout=timeout, mgmt_element=mgmt_element)


def test_a_failed_version_write_deletes_the_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = FullDiskCache(str(tmp_path))
    listing = VersionedListingCache(cast(Any, backend), timeout=300, max_entry_bytes=1024)
    user_id = uuid.uuid4()
    version, body = listing.get(user_id)
    assert body is None
    listing.put(user_id, version, b'[{"text": "old"}]')
    assert listing.get(user_id) == (version, b'[{"text": "old"}]')

    backend.refuse_writes = True
    with caplog.at_level(logging.WARNING, logger="cache.listing"):
        listing.invalidate(user_id)

    assert "deleting it" in caplog.text
    new_version, body = listing.get(user_id)
    assert body is None
    assert new_version != version


def test_a_successful_invalidation_retires_the_version(tmp_path: Path) -> None:
    listing = VersionedListingCache(cast(Any, FullDiskCache(str(tmp_path))), timeout=300, max_entry_bytes=1024)
    user_id = uuid.uuid4()
    version, _ = listing.get(user_id)
    listing.put(user_id, version, b"[]")
    listing.invalidate(user_id)
    new_version, body = listing.get(user_id)
    assert (new_version != version, body) == (True, None)


def _worker(path: Path, memo_bytes: int = 1024) -> VersionedListingCache:
    """One worker's view of a cache directory shared with others."""
    return VersionedListingCache(cast(Any, FileSystemCache(str(path))), 300, 1024, memo_max_bytes=memo_bytes)


def test_a_remembered_body_is_never_served_after_another_workers_write(tmp_path: Path) -> None:
    reader, writer = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = reader.get(user_id)
    reader.put(user_id, version, b"[old]")
    assert reader.get(user_id) == (version, b"[old]")  # now from the reader's memory
    writer.invalidate(user_id)
    new_version, body = reader.get(user_id)
    assert (new_version != version, body) == (True, None)


def test_a_body_read_from_the_shared_cache_is_remembered(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path)
    user_id = uuid.uuid4()
    version, _ = first.get(user_id)
    first.put(user_id, version, b"[shared]")
    assert second.get(user_id) == (version, b"[shared]")
    assert second.memo_bytes == len(b"[shared]")


def test_a_shared_body_past_its_lifetime_is_not_remembered(tmp_path: Path) -> None:
    backend = FileSystemCache(str(tmp_path))
    worker = VersionedListingCache(cast(Any, backend), 300, 1024, memo_max_bytes=1024)
    user_id = uuid.uuid4()
    version, _ = worker.get(user_id)
    # Stored 301 s ago by another worker (the backend's own expiry is a separate, later check).
    backend.set(f"l:{user_id}:{version}", (time.time() - 301, b"[aged]"), timeout=300)
    assert worker.get(user_id) == (version, b"[aged]")
    assert worker.memo_bytes == 0


def test_an_expired_version_is_replaced_once_and_then_kept(tmp_path: Path) -> None:
    # FileSystemCache.add refuses while an expired entry's file is still there: the version must
    # still be stored once, or every read would make up a new one (new tags, orphan bodies).
    backend = FileSystemCache(str(tmp_path))
    listing = VersionedListingCache(cast(Any, backend), 300, 1024)
    user_id = uuid.uuid4()
    backend.set(f"v:{user_id}", "expired", timeout=-10)
    assert backend.get(f"v:{user_id}") is None and not backend.add(f"v:{user_id}", "x")
    first = listing.version(user_id)
    assert first not in ("", "expired")
    assert [listing.version(user_id) for _ in range(3)] == [first] * 3
    listing.put(user_id, first, b"[kept]")
    assert listing.get(user_id) == (first, b"[kept]")


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
