"""Return pooled connections without a ROLLBACK round trip when their last transaction already ended.

SQLAlchemy's pool rolls back every connection it gets back, even right after a COMMIT: one
more round trip to the database per request (a quarter of an add-post's). Here a connection
is "dirty" from checkout, and after any statement, until SQLAlchemy commits or rolls it back;
only a dirty connection is rolled back on return. Raw DBAPI use never marks it clean, so it
is always rolled back, as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

DIRTY_KEY = "posts.transaction_open"


def skip_clean_resets(engine: Engine) -> None:
    """Install the tracking on an engine created with `pool_reset_on_return=None`."""
    event.listen(engine, "before_cursor_execute", _mark_dirty)
    event.listen(engine, "commit", _mark_clean)
    event.listen(engine, "rollback", _mark_clean)
    event.listen(engine.pool, "checkout", _mark_checked_out)
    event.listen(engine.pool, "reset", _reset_if_dirty)


def _mark_checked_out(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    record.info[DIRTY_KEY] = True


def _mark_dirty(connection: Connection, *_args: Any) -> None:
    connection.connection.info[DIRTY_KEY] = True


def _mark_clean(connection: Connection) -> None:
    # Fired just before the DBAPI commit/rollback; if that fails, the connection is
    # invalidated on disconnect, or the Session's own rollback follows (and marks it again).
    if connection.invalidated:
        # Its DBAPI connection is gone (the pool discards it); reaching for it here would raise
        # PendingRollbackError from inside the rollback that ends the invalid transaction.
        return
    connection.connection.info[DIRTY_KEY] = False


def _reset_if_dirty(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
    if state.terminate_only or not record.info.get(DIRTY_KEY, True):
        return
    dbapi_connection.rollback()
    record.info[DIRTY_KEY] = False
