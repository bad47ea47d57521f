"""The host store: what one deployment's processes on one host share without Redis, in one SQLite file.

It holds the listing version stamps and the copies of session generations (`HostCache` on the
`entries` table, the default Flask-Caching backend), listing bodies (`HostCache` on `bodies`),
and the rate limits' windows (cache/limits.py). The file lives in CACHE_DIR (memory-backed
/dev/shm by default) and is bounded in bytes: SQLite's `max_page_count` refuses to grow it past
CACHE_STORE_MAX_BYTES, and a write that meets the bound first evicts a batch of the least
recently stored bodies (small entries only once no body is left), so a full store costs a few
misses, never an error, and the many small entries outlive the few big ones. Rate-limit windows
are never evicted; they expire with their window.

Why not a library: cachelib's FileSystemCache scans its whole directory on every write once
past its threshold, and diskcache (SQLite too) opens one connection per thread, which under the
gevent worker means one per client connection (measured: 0.74 ms to open each). Here each
process opens the file once, and every operation is one short statement or transaction.
"""

from __future__ import annotations

import logging
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from cachelib import BaseCache

log = logging.getLogger(__name__)

# The schema's version is in the file's name: a newer release never reads an older layout.
FILE_NAME = "store-v1.sqlite3"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Cache entries evicted at once when the file is full (oldest stored first).
EVICTION_BATCH = 256
# A write waits this long for another process's write to finish (they take microseconds);
# past it the operation fails and callers fall back (a cache miss, a refused limit check). It
# waits in short sleeps of its own, not SQLite's busy handler: that one sleeps 1, 2, 5, 10 ms...
# inside the C call, which under the gevent worker would stall every request of the worker.
BUSY_TIMEOUT_SECONDS = 0.5
BUSY_RETRY_SECONDS = 0.0005
# The write-ahead log is checkpointed every 1000 pages (SQLite's default) and cut back to this.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# The cache tables, in the order eviction empties them.
CACHE_TABLES = ("bodies", "entries")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bodies (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, hits BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS windows_by_expiry ON windows (expires_at)",
)
# Never expires (cachelib's timeout 0): far in the future, as a number SQLite can compare.
FOREVER = float(2**62)


class HostFile:
    """One SQLite file shared by processes: one connection per process, opened on first use.

    `run` executes one operation under this process's lock; `transaction` runs several
    statements atomically across processes (BEGIN IMMEDIATE). Both raise sqlite3.Error on failure.
    """

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(directory) / FILE_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        # A connection inherited across a fork is abandoned, never closed: closing it in the
        # child could checkpoint or delete the parent's write-ahead log.
        self._inherited: list[sqlite3.Connection] = []

    def run(self, operation: Callable[[sqlite3.Connection], Any]) -> Any:
        """Call `operation` with this process's connection, one caller at a time; again while another process writes."""
        with self._lock:
            connection = self._connect()
            return _while_busy(lambda: operation(connection))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back if the block raises."""
        with self._lock:
            connection = self._connect()
            _while_busy(lambda: connection.execute("BEGIN IMMEDIATE"))
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def evict(self, connection: sqlite3.Connection) -> None:
        """Drop a batch of the least recently stored bodies (entries once no body is left), making room."""
        for table in CACHE_TABLES:
            deleted = connection.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY rowid LIMIT ?)",  # noqa: S608 - our own table names
                (EVICTION_BATCH,),
            ).rowcount
            if deleted:
                return

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        if self._connection is not None:
            self._inherited.append(self._connection)
        self._connection = None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            _while_busy(lambda: _prepare(connection, self.max_bytes))
        except BaseException:
            connection.close()
            raise
        self._connection, self._pid = connection, os.getpid()
        return connection


_files: dict[tuple[str, int], HostFile] = {}
_files_lock = threading.Lock()


def shared_file(directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> HostFile:
    """The one HostFile of this process for `directory`: the cache and the rate limits share its connection."""
    key = (str(Path(directory).resolve()), max_bytes)
    with _files_lock:
        found = _files.get(key)
        if found is None:
            found = _files[key] = HostFile(directory, max_bytes)
        return found


def _prepare(connection: sqlite3.Connection, max_bytes: int) -> None:
    """The connection's settings and the schema (again from the start if another process held the lock)."""
    connection.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs only at checkpoints; the store is a cache (and usually memory).
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
    connection.execute(f"PRAGMA max_page_count={max(16, max_bytes // page_size)}")
    for statement in _SCHEMA:
        connection.execute(statement)


def _while_busy(step: Callable[[], Any]) -> Any:
    """Run `step`, again after a short sleep while another process holds the lock, up to BUSY_TIMEOUT_SECONDS.

    The sleep is time.sleep, which the gevent worker makes cooperative: the worker's other
    requests go on meanwhile.
    """
    deadline: float | None = None
    while True:
        try:
            return step()
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + BUSY_TIMEOUT_SECONDS
            if now >= deadline:
                raise
            time.sleep(BUSY_RETRY_SECONDS)


def is_full(error: sqlite3.Error) -> bool:
    """Whether SQLite refused a write for want of room (the size bound, or the filesystem itself)."""
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class HostCache(BaseCache):
    """A cachelib cache in one table of the host file (`entries`: Flask-Caching's backend; `bodies`).

    Values are pickled, like every cachelib backend's; the directory is private to the service's
    user (config.py checks the default one). Store failures raise sqlite3.Error: the callers
    treat them as a cache outage. An expired entry reads as absent until it is replaced or evicted.
    """

    def __init__(self, file: HostFile, default_timeout: int = 300, *, table: str = "entries") -> None:
        super().__init__(default_timeout)
        if table not in CACHE_TABLES:
            raise ValueError(f"no cache table {table!r}")
        self.file = file
        self.table = table

    def sibling(self, table: str) -> HostCache:
        """The cache on another table of the same file (same connection, same bound)."""
        return HostCache(self.file, self.default_timeout, table=table)

    def get(self, key: str) -> Any:
        """The value stored under `key`, or None when absent or expired."""
        row = self.file.run(
            lambda db: db.execute(
                f"SELECT value FROM {self.table} WHERE key = ? AND expires_at > ?",  # noqa: S608 - our own table
                (key, time.time()),
            ).fetchone()
        )
        return None if row is None else pickle.loads(row[0])  # noqa: S301 - written by this service only

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        """Store `value` under `key` (replacing it), making room first if the store is full."""
        self._write(
            f"INSERT OR REPLACE INTO {self.table} (key, value, expires_at) VALUES (?, ?, ?)",  # noqa: S608
            (key, pickle.dumps(value), self._expiry(timeout)),
        )
        return True

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        """Store `value` only if `key` holds nothing live; True when it was stored."""
        changed = self._write(
            f"INSERT INTO {self.table} (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"  # noqa: S608
            f" SET value = excluded.value, expires_at = excluded.expires_at WHERE {self.table}.expires_at <= ?",
            (key, pickle.dumps(value), self._expiry(timeout), time.time()),
        )
        return changed == 1

    def delete(self, key: str) -> bool:
        """Remove `key`; True when it held something."""
        deleted: int = self.file.run(
            lambda db: db.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,)).rowcount  # noqa: S608
        )
        return deleted > 0

    def has(self, key: str) -> bool:
        """Whether `key` holds a live value."""
        return self.get(key) is not None

    def clear(self) -> bool:
        """Remove every entry of this table (the other tables stay)."""
        self.file.run(lambda db: db.execute(f"DELETE FROM {self.table}"))  # noqa: S608
        return True

    def _expiry(self, timeout: int | timedelta | None) -> float:
        seconds = self._normalize_timeout(timeout)
        return FOREVER if seconds == 0 else time.time() + seconds

    def _write(self, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run one write; when the store is full, evict a batch and try once more. The rows changed."""

        def write(db: sqlite3.Connection) -> int:
            try:
                return int(db.execute(statement, parameters).rowcount)
            except sqlite3.Error as error:
                if not is_full(error):
                    raise
                self.file.evict(db)
                return int(db.execute(statement, parameters).rowcount)

        changed: int = self.file.run(write)
        return changed


def flask_caching_backend(_app: Any, config: dict[str, Any], _args: list[Any], options: dict[str, Any]) -> HostCache:
    """Flask-Caching's factory hook (CACHE_TYPE names it): the store in CACHE_DIR, CACHE_STORE_MAX_BYTES big."""
    file = shared_file(config["CACHE_DIR"], int(config.get("CACHE_STORE_MAX_BYTES", DEFAULT_MAX_BYTES)))
    return HostCache(file, default_timeout=int(options.get("default_timeout", 300)))
