"""The SQLAlchemy engine: pool, timeouts and per-backend settings that keep outages short."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from config import Settings
from observability.db_pool import MeteredQueuePool
from repositories.pool_reset import skip_clean_resets

# How long a request can wait on MySQL/MariaDB during an outage, with C = DB_CONNECT_TIMEOUT_SECONDS
# (default 2) and R = DB_READ_TIMEOUT_SECONDS (default 3), against gunicorn's 30 s worker timeout:
# - server stopped or killed: the kernel resets its sockets. The pre-ping of a pooled connection
#   fails at once, the pool reconnects once, the connect is refused at once: 503 in milliseconds.
# - server frozen (SIGSTOP, swapped out, stuck): the kernel still completes TCP handshakes, but
#   nothing answers. A pre-ping waits R. Left alone, SQLAlchemy would then reconnect, and PyMySQL
#   reads the server greeting under R again (its connect_timeout covers only the TCP connect):
#   2R. `_no_reconnect_after_ping_timeout` makes a timed-out pre-ping fail the checkout instead,
#   so it costs R; a fresh connection costs R too (the greeting never comes).
# - host unreachable (packets dropped): the TCP connect gives up after C.
# - server freezes mid-request: the statement's read (or write) gives up after R; a request ends at
#   its first database error, so it never waits twice.
# So a request gets its 503 after at most max(C, R) = 3 s, plus C more only if every pooled
# connection is busy (pool_timeout; the pool, 2 x DB_POOL_SIZE, exceeds gunicorn's threads).
# R also bounds a healthy server's silence before answering one statement: this service's
# statements are single-row or indexed and take milliseconds, so 3 s of silence means trouble.


def build_engine(settings: Settings) -> Engine:
    """An engine whose timeouts answer 503 within seconds of an outage, well inside gunicorn's timeout."""
    url = make_url(settings.database_url.get_secret_value())
    # hide_parameters: driver errors quote the statement's values (emails, password hashes,
    # post text), and those errors end up in logs.
    # pool_reset_on_return=None: skip_clean_resets() rolls back only connections that need it.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True, "pool_reset_on_return": None}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 15}
    else:
        url = url.update_query_dict({"charset": "utf8mb4"})
        options.update(
            poolclass=MeteredQueuePool,  # counts checkouts that wait for a connection (metrics)
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_timeout=settings.db_connect_timeout_seconds,
            # Below MySQL's default wait_timeout (8 h) and typical proxies' idle cut-offs.
            pool_recycle=280,
            connect_args={
                "connect_timeout": settings.db_connect_timeout_seconds,
                "read_timeout": settings.db_read_timeout_seconds,
                "write_timeout": settings.db_read_timeout_seconds,
            },
        )
    engine = create_engine(url, **options)
    skip_clean_resets(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "handle_error", _no_reconnect_after_ping_timeout)
    return engine


def _no_reconnect_after_ping_timeout(context: ExceptionContext) -> None:
    """A pre-ping that timed out fails the checkout rather than reconnecting to a silent server.

    A ping that fails fast (the server closed the connection: restart, `wait_timeout`) stays a
    disconnect, so the pool reconnects and the request succeeds. PyMySQL raises its
    OperationalError while handling the socket's TimeoutError, hence `__context__`.
    """
    if context.is_pre_ping and isinstance(context.original_exception.__context__, TimeoutError):
        context.is_disconnect = False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
