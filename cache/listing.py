"""The per-user listing cache: a version stamp and the body in the shared store, bodies remembered in each process.

Per user the shared store (the host store, Redis, or in-process `simple`) holds the listing's
version stamp (`v:<user>`) and its latest body with the version it was read under
(`l:<user>`); each process also keeps the bodies it served under (user, version) in a
memory-bounded LRU (cache/memo.py), so a hit usually reads the stamp alone.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid

from cachelib import BaseCache

from cache.breaker import CircuitBreaker
from cache.memo import BodyMemo
from observability.metrics import CACHE_BYPASS, CACHE_HIT, CACHE_MISS

log = logging.getLogger(__name__)


class VersionedListingCache:
    """Listings keyed by (user, version); a write retires the user's version.

    A miss reads the version *before* querying the database and keeps the body under it.
    If a write lands in between, that version is already retired, so the possibly stale
    body is never served: read-your-writes holds across workers and hosts without locks.
    A body under a version never changes, so each process may keep its own copy: a hit is one
    read of the shared stamp; a process that has no copy reads the stamp and the shared body
    together (one round trip); a miss adds one write of the body, which any worker or host
    can then serve, the database being down included.

    Outages: every store error opens a circuit breaker, and while it is open reads skip the
    cache (they go to the database) without paying a timeout; invalidations are still tried
    at once, since other hosts may already reach the store again. A write whose invalidation
    could not reach the store leaves its user *pending* in this process: this process
    skips the cache for that user, and a background thread (plus every later cache use)
    retries the invalidation until it lands, so a store that comes back with its old
    data (persistence, or a partition rather than a restart) stops serving the pre-write
    listing about one retry interval after it is reachable again.
    """

    def __init__(
        self,
        backend: BaseCache,
        timeout: int,
        max_entry_bytes: int,
        *,
        max_bytes: int,
        bodies: BaseCache | None = None,
        retry_seconds: float = 2.0,
    ) -> None:
        """`backend` holds the stamps; `bodies` the shared bodies (default: `backend` too)."""
        self._backend = backend
        self._bodies = backend if bodies is None else bodies
        self._timeout = timeout
        self._max_entry_bytes = max_entry_bytes
        self._memo = BodyMemo(max_bytes)
        self._retry_seconds = retry_seconds
        self._breaker = CircuitBreaker(retry_seconds)
        self._lock = threading.Lock()
        # user -> generation of the newest invalidation this process still owes.
        self._pending: dict[uuid.UUID, int] = {}
        self._retrier: threading.Thread | None = None

    @property
    def memo_bytes(self) -> int:
        """Bytes of listing bodies this process holds."""
        return self._memo.size_bytes

    @property
    def max_entry_bytes(self) -> int:
        """The largest body `put` keeps; a listing that grows past it is streamed, not cached."""
        return self._max_entry_bytes

    def version(self, user_id: uuid.UUID) -> str:
        """The user's listing version, in one round trip; "" when the cache is not usable (bypass).

        A user without a version gets one, so a listing read now can be kept under it.
        """
        if not self._usable() or self.is_pending(user_id):
            return ""
        try:
            version = self._stamp(user_id, self._backend.get(f"v:{user_id}"))
        except Exception:  # a cache outage must degrade to the database, not fail the request
            self._failed("read")
            return ""
        self._breaker.succeeded()
        return version

    def get(self, user_id: uuid.UUID) -> tuple[str, bytes | None]:
        """The current version of the user's listing and its body if cached; ("", None) to bypass.

        Each call is one listing lookup for the metrics: a hit, a miss, or a bypass.
        """
        version = self.version(user_id)
        return version, self.body(user_id, version)

    def body(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The listing body kept under this version, if any (None too when bypassed).

        Each call is one listing lookup for the metrics: a hit, a miss, or a bypass.
        """
        if not version:
            CACHE_BYPASS.inc()
            return None
        body = self._memo.get(user_id, version)
        if body is None:
            try:
                body = self._shared_body(user_id, version)
            except Exception:
                self._failed("read")
                CACHE_BYPASS.inc()
                return None
        (CACHE_MISS if body is None else CACHE_HIT).inc()
        return body

    def _stamp(self, user_id: uuid.UUID, version: object) -> str:
        """The version read, or a new one stored now when the user has none (concurrent readers agree)."""
        if version is not None:
            return str(version)
        version_key = f"v:{user_id}"
        fresh = secrets.token_hex(8)
        if self._backend.add(version_key, fresh, timeout=2 * self._timeout):
            return fresh
        stored = self._backend.get(version_key)
        if stored is None:
            raise OSError(f"listing cache could not store a version for user {user_id}")
        return str(stored)

    def _shared_body(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The body another process stored under this version, remembered here for the rest of its lifetime."""
        entry = self._bodies.get(f"l:{user_id}")
        if not isinstance(entry, tuple) or len(entry) != 3 or entry[0] != version:
            return None
        _, stored_at, body = entry
        # Never beyond the shared entry's own expiry: a body is served for at most `timeout`.
        self._memo.put(user_id, version, body, self._timeout - (time.time() - stored_at))
        return body  # type: ignore[no-any-return]

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop a deleted user's listing: its version is retired and its shared body deleted.

        Copies in processes' memos are never served again (their version is gone) and age out.
        """
        self.invalidate(user_id)
        try:
            self._bodies.delete(f"l:{user_id}")
        except Exception:  # never served again either way; it expires within the cache's timeout
            self._failed("write")

    def put(self, user_id: uuid.UUID, version: str, body: bytes) -> None:
        """Keep the body under the version read before the query, unless it is too big or the cache is bypassed.

        A body kept under a version retired meanwhile is never served (no reader gets that
        version again); it is overwritten by the next miss or ages out.
        """
        if not version or len(body) > self._max_entry_bytes:
            return
        self._memo.put(user_id, version, body, self._timeout)
        if not self._breaker.allows():
            return
        try:
            # Stored with its time, so a copy in another process's memo never outlives the entry.
            self._bodies.set(f"l:{user_id}", (version, time.time(), body), timeout=self._timeout)
        except Exception:
            self._failed("write")
            return
        self._breaker.succeeded()

    def invalidate(self, user_id: uuid.UUID) -> None:
        """Retire the user's version; if the backend is unreachable, keep retrying until it is."""
        # Tried even while the breaker is open: the backend may be back for the other hosts
        # (which read from it) before this process's cool-down ends. A write pays at most one
        # timeout for that; reads keep skipping the backend.
        try:
            self._retire(user_id)
        except Exception:
            self._defer(user_id, "invalidation")
            return
        self._breaker.succeeded()

    def _defer(self, user_id: uuid.UUID, what: str) -> None:
        """Owe the user a catch-up write: until it lands, this process bypasses the cache for them."""
        self._failed(what)
        with self._lock:
            # A new generation, so a retry already under way for an older write of this
            # user does not clear this one (it may have retired the version before our commit).
            self._pending[user_id] = self._pending.get(user_id, 0) + 1
        log.error("listing cache %s deferred for user %s (cache unreachable)", what, user_id)
        self._start_retrier()

    def is_pending(self, user_id: uuid.UUID) -> bool:
        """True while this process owes the user an invalidation the backend has not yet taken."""
        with self._lock:
            return user_id in self._pending

    def _retire(self, user_id: uuid.UUID) -> None:
        """Store a new version for the user: every process's body under the old one is never served again.

        A backend may report a failed write by returning False rather than raising; the old
        version would then live on, so it is deleted instead (the next reader makes a new one).
        """
        version_key = f"v:{user_id}"
        if self._backend.set(version_key, secrets.token_hex(8), timeout=2 * self._timeout) is False:
            log.warning("listing cache could not store a new version for user %s; deleting it", user_id)
            if not self._backend.delete(version_key) and self._backend.has(version_key):
                raise OSError(f"listing cache could neither replace nor delete the version of user {user_id}")

    def _usable(self) -> bool:
        """Whether the cache may be used now: breaker closed (or probing) and nothing owed."""
        if not self._breaker.allows():
            return False
        with self._lock:
            owed = bool(self._pending)
        return not owed or self._flush_pending()

    def _flush_pending(self) -> bool:
        """Retry every owed invalidation; True when none is left."""
        with self._lock:
            owed = list(self._pending.items())
        for user_id, generation in owed:
            try:
                self._retire(user_id)
            except Exception:
                self._failed("invalidation")
                return False
            with self._lock:
                if self._pending.get(user_id) == generation:  # no newer failed write meanwhile
                    del self._pending[user_id]
        self._breaker.succeeded()
        with self._lock:
            return not self._pending

    def _failed(self, operation: str) -> None:
        # One line per outage, not per request: the breaker skips the calls that would log.
        log.warning("listing cache unavailable on %s; using the database for %.1fs", operation, self._retry_seconds)
        self._breaker.failed()

    def _start_retrier(self) -> None:
        with self._lock:
            if self._retrier is not None:
                return
            self._retrier = threading.Thread(target=self._retry_until_flushed, name="listing-cache-retry", daemon=True)
            self._retrier.start()

    def _retry_until_flushed(self) -> None:
        """Background: retry owed invalidations once per retry interval until none is left."""
        while True:
            time.sleep(self._retry_seconds)
            if self._breaker.allows() and self._flush_pending():
                log.info("listing cache reachable again; deferred invalidations done")
            with self._lock:
                if not self._pending:
                    self._retrier = None
                    return
