"""The SQLAlchemy engine: pool, timeouts, per-backend settings, and the breaker that keeps outages short."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from cache.breaker import CircuitBreaker
from config import Settings
from observability.db_pool import MeteredQueuePool
from repositories.pool_reset import skip_clean_resets
from repositories.schema import is_missing_schema

log = logging.getLogger(__name__)

# How long a request can wait on MySQL/MariaDB during an outage, with C = DB_CONNECT_TIMEOUT_SECONDS
# (default 2) and R = DB_READ_TIMEOUT_SECONDS (default 3), against gunicorn's 30 s worker timeout:
# - server stopped or killed: the kernel resets its sockets. A pooled connection idle for over
#   IDLE_PING_SECONDS is pinged on checkout: the ping fails at once, the pool reconnects once, the
#   connect is refused at once. A connection in use until a moment ago is not pinged: its
#   statement fails at once. Either way the 503 comes in milliseconds.
# - server frozen (SIGSTOP, swapped out, stuck): the kernel still completes TCP handshakes, but
#   nothing answers. A ping waits R; it then fails the checkout instead of reconnecting to the
#   silent server (PyMySQL reads the greeting under R again: 2R). A fresh connection costs R too
#   (the greeting never comes).
# - host unreachable (packets dropped): the TCP connect gives up after C.
# - server freezes mid-request: the statement's read (or write) gives up after R; a request ends at
#   its first database error, and a caller that carries on (the session check falls back to
#   what the process knows) gets no further connection: it never waits twice.
# That bounds one request, not a crowd: with every pooled connection of a worker waiting R on a
# frozen server, the requests queued behind them would wait R more each, in turn (figures in
# docs/database-outages.md). Hence
# `DatabaseBreaker`: the first timeout or failed connect opens it, and from then on this process
# answers 503 at once without touching the pool, letting one request probe every DB_RETRY_SECONDS.
# So a request gets its 503 after at most R (the requests already waiting when the server froze)
# and in milliseconds once anyone has found out. Requests that were already waiting for a pooled
# connection (pool_timeout = C) when the breaker opened are refused before they connect, so they
# never add R to that wait.
# R also bounds a healthy server's silence before answering one statement: this service's
# statements are single-row or indexed and take milliseconds, so 3 s of silence means trouble.
# A statement that waits on a row or metadata lock held by someone else (an operator's console,
# a long migration, a stuck transaction) is not silence of the server: each connection limits
# such waits to L = DB_LOCK_WAIT_SECONDS (< R), so the wait ends as that statement's own error
# (MySQL/MariaDB 1205) before the read timeout could mistake it for an outage. That error, a
# deadlock, and a checkout that found no pooled connection free in time are "busy": a 503 for
# that request alone, never counted by the breaker (docs/database-outages.md has the rule).


class DatabaseUnavailableError(PoolTimeoutError):
    """No connection handed out: the database is known to be down (its breaker is open).

    A subclass of the pool's own "no connection in time" error, so whatever handles that one
    (the 503 handler, the CLI's error messages) handles this one too.
    """

    def __init__(self, message: str = "database unavailable (failing fast until a probe reaches it)") -> None:
        super().__init__(message)


# MySQL/MariaDB errors that end one statement of a healthy server: ER_LOCK_WAIT_TIMEOUT (row and
# metadata locks), ER_LOCK_DEADLOCK.
MYSQL_BUSY_ERRORS = frozenset({1205, 1213})
# SQLite's "database is locked" / "database table is locked": another writer held the lock too long.
SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def is_busy(error: BaseException) -> bool:
    """Whether `error` means "this request could not be served in time" while the database is healthy.

    A lock wait or deadlock that ended one statement, or a checkout that waited for a pooled
    connection past its limit. DatabaseUnavailableError (the breaker's refusal) is not busy: down.
    """
    if isinstance(error, DatabaseUnavailableError):
        return False
    if isinstance(error, PoolTimeoutError):
        return True
    original = getattr(error, "orig", None)
    code = original.args[0] if original is not None and original.args else None
    if isinstance(code, int):
        return code in MYSQL_BUSY_ERRORS
    return any(message in str(original) for message in SQLITE_BUSY_MESSAGES) if original is not None else False


@contextmanager
def down_as_unavailable(session: Session) -> Iterator[None]:
    """Around reads a caller can do without: a database that is down raises DatabaseUnavailableError.

    Known down (the breaker), unreachable, or the connection lost: the session is rolled back
    and DatabaseUnavailableError raised, so the caller may fall back. A busy moment (a lock
    wait, no pooled connection in time) and a schema that is not migrated propagate as they are.
    """
    try:
        yield
    except PoolTimeoutError as exc:
        if is_busy(exc):
            raise
        raise DatabaseUnavailableError from None
    except OperationalError as exc:
        if is_missing_schema(exc) or is_busy(exc):
            raise
        session.rollback()
        raise DatabaseUnavailableError from exc


# A pooled connection idle longer than this is pinged before use (DatabaseBreaker._ping_if_idle).
IDLE_PING_SECONDS = 1.0
IDLE_SINCE_KEY = "posts.idle_since"

# The breaker that admitted this request (thread or greenlet) and its failure count at the time.
_admitted: ContextVar[tuple[DatabaseBreaker, int] | None] = ContextVar("posts_db_admitted", default=None)


class DatabaseBreaker:
    """Fails database work fast while the database is known to be down; one probe per cool-down.

    Opened by a timeout (connect, handshake, idle ping, statement) or a connection that could not
    be made, as reported by the engine's `handle_error` event; closed by the next connection the
    pool hands out healthy (idle ping passed, or just connected). Callers ask `admit()` before
    their first statement; a connection, new or pooled, for a caller admitted before the latest
    failure is refused too, so a request never waits on the database twice: not after waiting for
    the pool, and not after its own first timeout (the session check falls back, then the write
    would need a connection).
    A failure that is not an outage (constraint, deadlock, lock wait, a checkout that waited for a
    pooled connection too long, a stale pooled connection that the pool replaces) leaves it closed.
    """

    def __init__(self, cooldown: float, probe_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._breaker = CircuitBreaker(cooldown, clock, probe_timeout=probe_timeout)
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self._failures = 0

    @classmethod
    def watching(
        cls, engine: Engine, settings: Settings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> DatabaseBreaker:
        """A breaker on `engine`'s events, timed by `settings` (by default, the settings' defaults)."""
        fields = Settings.model_fields
        if settings is None:
            cooldown = fields["db_retry_seconds"].default
            worst = fields["db_connect_timeout_seconds"].default + fields["db_read_timeout_seconds"].default
        else:
            cooldown = settings.db_retry_seconds
            worst = settings.db_connect_timeout_seconds + settings.db_read_timeout_seconds
        # A probe may wait for a pooled connection and then for its handshake or ping.
        breaker = cls(cooldown, probe_timeout=max(cooldown, float(worst)), clock=clock)
        event.listen(engine, "handle_error", breaker._on_error)
        # First in line: the refusal must come before any listener that makes the connection.
        event.listen(engine, "do_connect", breaker._refuse_if_failed_since_admitted, insert=True)
        # Also first on checkout: a pooled connection is refused before its idle ping could wait.
        event.listen(engine.pool, "checkout", breaker._refuse_if_failed_since_admitted, insert=True)
        if engine.dialect.name != "sqlite":
            event.listen(engine.pool, "checkin", _note_idle)
            event.listen(engine.pool, "checkout", breaker._ping_if_idle)
        event.listen(engine.pool, "checkout", breaker._on_checkout)
        return breaker

    @property
    def is_open(self) -> bool:
        """True from a failure until a connection is handed out healthy again."""
        return self._breaker.is_open

    def admit(self) -> None:
        """Let this caller use the database, or raise DatabaseUnavailableError at once while it is down."""
        failures = self._failures  # read first: a failure after this refuses our connect
        if not self._breaker.allows():
            raise DatabaseUnavailableError
        _admitted.set((self, failures))

    def release(self) -> None:
        """This caller is done with the database (its session is closed)."""
        _admitted.set(None)

    def failed(self, reason: str) -> None:
        """The database timed out or refused a connection: fail fast for one cool-down."""
        with self._lock:
            self._failures += 1
            was_open = self._breaker.is_open
            self._breaker.failed()
        if not was_open:
            # One line per outage, not per request: the refused requests are in the audit log.
            log.warning("database unreachable (%s): 503 at once, one probe every %.1f s", reason, self._cooldown)

    def succeeded(self) -> None:
        """The database handed out a healthy connection: close the breaker."""
        if self._breaker.is_open:
            self._breaker.succeeded()
            log.warning("database reachable again")

    def _on_error(self, context: ExceptionContext) -> None:
        error = context.original_exception
        if _timed_out(error):
            self.failed(f"{type(error).__name__} after a timeout")
        elif context.connection is None and not context.is_pre_ping:
            # No connection was made at all (refused, reset, bad credentials). A failed pre-ping
            # is left to the pool: it reconnects, and only that reconnect's failure counts.
            self.failed(f"{type(error).__name__} on connect")

    def _refuse_if_failed_since_admitted(self, *_args: Any) -> None:
        """do_connect and checkout: a caller admitted before the latest failure gets no connection.

        Neither a new one (its handshake would wait on the server) nor a pooled one (its idle ping,
        or its first statement, would): a request that already met a timeout, or that was
        admitted just before another request met one, is refused at once rather than wait again.
        """
        admitted = _admitted.get()
        if admitted is not None and admitted[0] is self and admitted[1] != self._failures:
            raise DatabaseUnavailableError

    def _on_checkout(self, *_args: Any) -> None:
        self.succeeded()

    def _ping_if_idle(self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        """checkout: ping a pooled connection that sat idle, so a dead one is replaced before use.

        A connection used within the last IDLE_PING_SECONDS is handed out as is (under load that
        is every one: no round trip); one idle longer may have been closed by the server
        (wait_timeout, a restart, a proxy's idle cut-off). A ping that fails fast makes the pool
        replace the connection (SQLAlchemy's DisconnectionError); one that times out means a
        silent server: the checkout fails (503) rather than wait again on a reconnect.
        """
        idle_since = record.info.get(IDLE_SINCE_KEY)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping(reconnect=False)
        except Exception as exc:
            if _timed_out(exc):
                self.failed(f"{type(exc).__name__} after a timeout on ping")
                raise DatabaseUnavailableError from exc
            raise DisconnectionError(f"idle connection lost ({type(exc).__name__})") from exc


def _note_idle(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """checkin: the connection is idle from now."""
    record.info[IDLE_SINCE_KEY] = time.monotonic()


def _timed_out(error: BaseException) -> bool:
    """Whether a socket timeout is behind `error`: drivers raise their own error while handling it."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def build_engine(settings: Settings) -> Engine:
    """An engine whose timeouts answer 503 within seconds of an outage, well inside gunicorn's timeout."""
    url = make_url(settings.database_url.get_secret_value())
    # hide_parameters: driver errors quote the statement's values (emails, password hashes,
    # post text), and those errors end up in logs.
    # pool_reset_on_return=None: skip_clean_resets() rolls back only connections that need it
    # (a committed write goes back without a ROLLBACK round trip; a read ends its snapshot).
    # No pool_pre_ping: a ping per checkout is a round trip on every request; DatabaseBreaker
    # pings a pooled connection only when it sat idle (see `_ping_if_idle`).
    # Both kept because the bench needs them: with SQLAlchemy's defaults add-post's p99 doubles and
    # passes the original's (docs/benchmark.md, "Tricks the bench keeps").
    options: dict[str, Any] = {"hide_parameters": True, "pool_reset_on_return": None}
    lock_wait = settings.lock_wait_seconds
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # How long a write waits for another writer's lock before "database is locked" (busy).
        options["connect_args"] = {"timeout": lock_wait}
    else:
        url = url.update_query_dict({"charset": "utf8mb4"})
        options.update(
            poolclass=MeteredQueuePool,  # counts checkouts that wait for a connection (metrics)
            # DB_POOL_SIZE connections, all kept once opened: overflow connections are closed on
            # return, and under the gevent worker they would be opened and closed all the time, each
            # costing a handshake and a TLS context (PyMySQL's preferred TLS loads the CA bundle,
            # CPU that stalls every other request of the worker; docs/serving.md has the figures).
            pool_size=settings.db_pool_size,
            max_overflow=0,
            # Waiting for a pooled connection is no outage: long enough for a request that holds
            # one to give it back even when the server froze under it (C + R), then "busy".
            pool_timeout=settings.db_connect_timeout_seconds + settings.db_read_timeout_seconds,
            # Below MySQL's default wait_timeout (8 h) and typical proxies' idle cut-offs.
            pool_recycle=280,
            connect_args={
                "connect_timeout": settings.db_connect_timeout_seconds,
                "read_timeout": settings.db_read_timeout_seconds,
                "write_timeout": settings.db_read_timeout_seconds,
                # Row and metadata lock waits end as the statement's own error before R (same
                # names on MySQL 8 and MariaDB), sent with the handshake: no round trip of its own.
                "init_command": f"SET SESSION innodb_lock_wait_timeout = {lock_wait}, lock_wait_timeout = {lock_wait}",
            },
            # Not autocommit, although every write is one statement: a write sent to a frozen
            # server waits in its socket buffer, the request gives up (503), and once the server
            # thaws it would run the statement and commit it by itself: a post the client was told
            # was not stored (tests/e2e/test_database_outage.py checks it). In a transaction, the
            # COMMIT never comes and the server rolls the write back when it finds the connection
            # gone. The price: a read-only checkout ends with a ROLLBACK (its snapshot must end).
        )
    engine = create_engine(url, **options)
    skip_clean_resets(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
