"""The per-user listing cache on Flask-Caching, safe against stale writes from concurrent misses."""

from __future__ import annotations

import logging
import secrets
import uuid

from flask import Flask
from flask_caching import Cache

from core.config import Settings

log = logging.getLogger(__name__)

LISTING_CACHE_KEY = "posts.listing_cache"
BACKENDS = {"simple": "SimpleCache", "filesystem": "FileSystemCache", "redis": "RedisCache"}


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

    def __init__(self, cache: Cache, timeout: int, max_entry_bytes: int) -> None:
        self._cache = cache
        self._timeout = timeout
        self._max_entry_bytes = max_entry_bytes

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
            return version, self._cache.get(f"l:{user_id}:{version}")
        except Exception:  # a cache outage must degrade to the database, not fail the request
            log.warning("listing cache unavailable on read", exc_info=True)
            return "", None

    def put(self, user_id: uuid.UUID, version: str, body: bytes) -> None:
        """Cache the body unless it is too big or the version could not be read."""
        if not version or len(body) > self._max_entry_bytes:
            return
        try:
            self._cache.set(f"l:{user_id}:{version}", body, timeout=self._timeout)
        except Exception:
            log.warning("listing cache unavailable on write", exc_info=True)

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
        cache, settings.cache_timeout_seconds, settings.cache_max_entry_bytes
    )
