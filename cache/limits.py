"""Rate-limit counters for Flask-Limiter that every process of a deployment shares, with or without Redis.

Two storages for the `limits` library, registered under their URI schemes when this module is
imported (config.py names them in RATELIMIT_STORAGE_URI):

- `posts-host://`: the host store's `windows` table (cache/host.py). Every worker of one host
  counts in one place, so a limit of 5 is 5 whatever WEB_CONCURRENCY is.
- `posts-redis://`: Redis (the `limits` library's own storage), shared by every host; while
  Redis fails, the host store counts instead (per host, never per process), and a circuit
  breaker spares each call a socket timeout until a probe finds Redis back.

Only the moving-window strategy (extensions.py) is used; the fixed-window methods the base
class requires count in the same table.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from array import array
from typing import Any

from limits.storage import MovingWindowSupport, Storage, storage_from_string

from cache.breaker import CircuitBreaker
from cache.host import DEFAULT_MAX_BYTES, HostFile, shared_file

log = logging.getLogger(__name__)

# Expired windows removed per acquire (the index on expires_at finds them).
EXPIRED_BATCH = 32


def _hits(db: sqlite3.Connection, key: str, since: float) -> array[float]:
    """The times of the hits on `key` after `since`, oldest first."""
    row = db.execute("SELECT hits FROM windows WHERE key = ?", (key,)).fetchone()
    hits: array[float] = array("d")
    if row is not None:
        hits.frombytes(row[0])
    return array("d", (hit for hit in hits if hit > since))


class HostStorage(Storage, MovingWindowSupport):
    """Moving windows in the host store: one transaction per hit, exact across the host's processes."""

    STORAGE_SCHEME = ["posts-host"]  # noqa: RUF012 - the `limits` registry reads it off the class

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        """`options`: `directory` (CACHE_DIR) and `max_bytes` (CACHE_STORE_MAX_BYTES) of the host store."""
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._file: HostFile = shared_file(str(options["directory"]), int(options.get("max_bytes", DEFAULT_MAX_BYTES)))

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What the store raises when it fails."""
        return (sqlite3.Error, OSError)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record `amount` hits now if the window since `expiry` seconds ago has room for them."""
        if amount > limit:
            return False
        now = time.time()
        with self._file.transaction() as db:
            hits = _hits(db, key, now - expiry)
            if len(hits) + amount > limit:
                return False
            hits.extend([now] * amount)
            db.execute(
                "INSERT OR REPLACE INTO windows (key, hits, expires_at) VALUES (?, ?, ?)",
                (key, hits.tobytes(), now + expiry),
            )
            db.execute(
                "DELETE FROM windows WHERE rowid IN (SELECT rowid FROM windows WHERE expires_at < ? LIMIT ?)",
                (now, EXPIRED_BATCH),
            )
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The oldest hit still in the window (now if none) and how many there are."""
        now = time.time()
        hits = self._file.run(lambda db: _hits(db, key, now - expiry))
        return (hits[0] if hits else now), len(hits)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Fixed window: add `amount` to the key's count, which lives `expiry` seconds from its first hit."""
        now = time.time()
        with self._file.transaction() as db:
            row = db.execute("SELECT hits, expires_at FROM windows WHERE key = ?", (key,)).fetchone()
            count, expires_at = (0, now + expiry) if row is None or row[1] <= now else (int(row[0]), row[1])
            db.execute(
                "INSERT OR REPLACE INTO windows (key, hits, expires_at) VALUES (?, ?, ?)",
                (key, str(count + amount).encode(), expires_at),
            )
            return count + amount

    def get(self, key: str) -> int:
        """Fixed window: the key's count (0 when absent or expired)."""
        row = self._file.run(
            lambda db: db.execute("SELECT hits FROM windows WHERE key = ? AND expires_at > ?", (key, time.time()))
        ).fetchone()
        return 0 if row is None else int(row[0])

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (now when it has none)."""
        row = self._file.run(lambda db: db.execute("SELECT expires_at FROM windows WHERE key = ?", (key,)).fetchone())
        return time.time() if row is None else float(row[0])

    def check(self) -> bool:
        """Whether the store answers."""
        try:
            self._file.run(lambda db: db.execute("SELECT 1").fetchone())
        except self.base_exceptions:
            return False
        return True

    def reset(self) -> int | None:
        """Forget every window."""
        removed: int = self._file.run(lambda db: db.execute("DELETE FROM windows").rowcount)
        return removed

    def clear(self, key: str) -> None:
        """Forget one key's window."""
        self._file.run(lambda db: db.execute("DELETE FROM windows WHERE key = ?", (key,)))


class RedisOrHostStorage(Storage, MovingWindowSupport):
    """Redis shared by every host; while it fails, the host store (a per-host count, never a per-process one)."""

    STORAGE_SCHEME = ["posts-redis"]  # noqa: RUF012 - the `limits` registry reads it off the class

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        """`options`: `redis_url`, `timeout` and `retry_seconds` for Redis; `directory` and `max_bytes` for the host."""
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        timeout = float(options.get("timeout", 1.0))
        redis = storage_from_string(str(options["redis_url"]), socket_timeout=timeout, socket_connect_timeout=timeout)
        if not isinstance(redis, Storage) or not isinstance(redis, MovingWindowSupport):
            raise TypeError("the redis storage of `limits` must support moving windows")
        self._redis = redis
        self._host = HostStorage(directory=options["directory"], max_bytes=options.get("max_bytes", DEFAULT_MAX_BYTES))
        self._breaker = CircuitBreaker(float(options.get("retry_seconds", 2.0)))

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What the host store raises: Redis failures never reach the caller."""
        return self._host.base_exceptions

    def _call(self, method: str, *args: Any) -> Any:
        """Call `method` on Redis while it answers, else on the host store."""
        if self._breaker.allows():
            try:
                result = getattr(self._redis, method)(*args)
            except Exception as exc:
                if not self._breaker.is_open:
                    log.warning("rate limits: Redis unavailable (%s); counting on this host", type(exc).__name__)
                self._breaker.failed()
            else:
                if self._breaker.is_open:
                    log.warning("rate limits: Redis reachable again; counting there")
                self._breaker.succeeded()
                return result
        return getattr(self._host, method)(*args)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record `amount` hits if the window has room (Redis, else the host)."""
        acquired: bool = self._call("acquire_entry", key, limit, expiry, amount)
        return acquired

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window's oldest hit and its count (Redis, else the host)."""
        window: tuple[float, int] = self._call("get_moving_window", key, limit, expiry)
        return window

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Fixed window: add to the key's count (Redis, else the host)."""
        count: int = self._call("incr", key, expiry, amount)
        return count

    def get(self, key: str) -> int:
        """Fixed window: the key's count (Redis, else the host)."""
        count: int = self._call("get", key)
        return count

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (Redis, else the host)."""
        expiry: float = self._call("get_expiry", key)
        return expiry

    def check(self) -> bool:
        """Whether counting works: in Redis, or else in the host store."""
        return bool(self._call("check")) or self._host.check()

    def reset(self) -> int | None:
        """Forget every window, in both places."""
        self._host.reset()
        removed: int | None = self._call("reset")
        return removed

    def clear(self, key: str) -> None:
        """Forget one key's window, in both places."""
        self._host.clear(key)
        self._call("clear", key)
