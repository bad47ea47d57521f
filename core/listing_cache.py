"""The per-user listing cache on Flask-Caching, safe against stale writes from concurrent misses."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict

from flask import Flask
from flask_caching import Cache

from core.config import Settings

log = logging.getLogger(__name__)

LISTING_CACHE_KEY = "posts.listing_cache"
BACKENDS = {"simple": "SimpleCache", "filesystem": "FileSystemCache", "redis": "RedisCache"}
# Per-process copy of bodies read from a shared backend (see BodyMemo); 0 for `simple`,
# which already lives in the process.
MEMO_MAX_BYTES = 16 * 1024 * 1024


class BodyMemo:
    """A bounded in-process LRU of listing bodies by (user, version), each with its expiry.

    A body stored under a version never changes (a write retires the version instead), so
    remembering it is always coherent: a hit then reads only the shared version stamp.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[uuid.UUID, str], tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The remembered body, unless absent or expired."""
        key = (user_id, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, body = entry
            if expires_at <= time.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return body

    def put(self, user_id: uuid.UUID, version: str, body: bytes, ttl: float) -> None:
        """Remember a body until `ttl` seconds from now, evicting the least recently used beyond the bound."""
        if len(body) > self._max_bytes or ttl <= 0:
            return
        key = (user_id, version)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic() + ttl, body)
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    @property
    def size_bytes(self) -> int:
        """Bytes of bodies held now (never above the bound)."""
        return self._bytes

    def _drop(self, key: tuple[uuid.UUID, str]) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)


def cache_config(settings: Settings) -> dict[str, object]:
    """Flask-Caching settings for the configured backend.

    `simple` lives in one process; `filesystem` is shared by every worker of one host;
    `redis` is shared by every host. Entries are bounded in count here and in size by
    VersionedListingCache, so a process holds at most max_entries x max_entry_bytes.
    """
    config: dict[str, object] = {
        "CACHE_TYPE": BACKENDS[settings.cache_backend],
        "CACHE_DEFAULT_TIMEOUT": settings.cache_timeout_seconds,
        "CACHE_THRESHOLD": settings.cache_max_entries,
        "CACHE_KEY_PREFIX": "posts-api:",
    }
    if settings.cache_backend == "filesystem":
        config["CACHE_DIR"] = settings.cache_dir
    if settings.cache_backend == "redis":
        config["CACHE_REDIS_URL"] = settings.redis_url
        config["CACHE_OPTIONS"] = {"socket_timeout": 1, "socket_connect_timeout": 1}
    return config


class VersionedListingCache:
    """Listings keyed by (user, version); a write retires the user's version.

    A miss reads the version *before* querying the database and stores the body under it.
    If a write lands in between, that version is already retired, so the possibly stale
    body is never served: read-your-writes holds across workers without locks.
    """

    def __init__(self, cache: Cache, timeout: int, max_entry_bytes: int, memo_max_bytes: int = 0) -> None:
        self._cache = cache
        self._timeout = timeout
        self._max_entry_bytes = max_entry_bytes
        self._memo = BodyMemo(memo_max_bytes) if memo_max_bytes else None

    def get(self, user_id: uuid.UUID) -> tuple[str, bytes | None]:
        """The current version of the user's listing and its body if cached."""
        version_key = f"v:{user_id}"
        try:
            version = self._cache.get(version_key)
            if version is None:
                version = secrets.token_hex(8)
                if not self._cache.add(version_key, version, timeout=2 * self._timeout):
                    version = self._cache.get(version_key) or version
                return version, None
            if self._memo is not None and (body := self._memo.get(user_id, version)) is not None:
                return version, body
            return version, self._shared_body(user_id, version)
        except Exception:  # a cache outage must degrade to the database, not fail the request
            log.warning("listing cache unavailable on read", exc_info=True)
            return "", None

    def _shared_body(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The body from the shared backend, remembered in-process for the rest of its lifetime."""
        entry = self._cache.get(f"l:{user_id}:{version}")
        if isinstance(entry, bytes):  # written by a release that stored bare bodies
            return entry
        if not isinstance(entry, tuple):
            return None
        stored_at, body = entry
        if self._memo is not None:
            # Never beyond the shared entry's own expiry: a body is served for at most `timeout`.
            self._memo.put(user_id, version, body, self._timeout - (time.time() - stored_at))
        return body  # type: ignore[no-any-return]

    def put(self, user_id: uuid.UUID, version: str, body: bytes) -> None:
        """Cache the body unless it is too big or the version could not be read."""
        if not version or len(body) > self._max_entry_bytes:
            return
        try:
            self._cache.set(f"l:{user_id}:{version}", (time.time(), body), timeout=self._timeout)
        except Exception:
            log.warning("listing cache unavailable on write", exc_info=True)
        if self._memo is not None:
            self._memo.put(user_id, version, body, self._timeout)

    def invalidate(self, user_id: uuid.UUID) -> None:
        """Retire the user's version; every body cached under it becomes unreachable.

        The filesystem backend reports a failed write (e.g. a full disk) by returning False
        rather than raising; the old version would then live on, so it is deleted instead.
        """
        version_key = f"v:{user_id}"
        try:
            if self._cache.set(version_key, secrets.token_hex(8), timeout=2 * self._timeout) is False:
                log.warning("listing cache could not store a new version for user %s; deleting it", user_id)
                self._cache.delete(version_key)
        except Exception:
            log.error("listing cache invalidation failed for user %s", user_id, exc_info=True)


def init_listing_cache(app: Flask, cache: Cache, settings: Settings) -> None:
    """Bind Flask-Caching and expose the listing cache on the app."""
    cache.init_app(app, config=cache_config(settings))
    app.extensions[LISTING_CACHE_KEY] = VersionedListingCache(
        cache,
        settings.cache_timeout_seconds,
        settings.cache_max_entry_bytes,
        memo_max_bytes=0 if settings.cache_backend == "simple" else MEMO_MAX_BYTES,
    )
