"""The listing cache when its backend cannot write: a failed invalidation must never leave a stale listing."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from cachelib.file import FileSystemCache

from core.listing_cache import VersionedListingCache


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
    with caplog.at_level(logging.WARNING, logger="core.listing_cache"):
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
