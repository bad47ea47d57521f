"""Queries on the posts table, as prebuilt Core statements: the hot paths skip the ORM's per-call work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    null,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from models.entities import Post
from models.tables import PostRow, UserRow
from repositories.errors import UnknownOwnerError

# Listings are read through a server-side (unbuffered) cursor, one row per fetch: a row can hold
# a 1 MiB post, so this bounds what a listing holds in memory whatever its length. PyMySQL's
# SSCursor reads each row off the socket as it is fetched; SQLite steps its statement row by
# row anyway. Measured (tests/e2e/test_big_listings.py, one worker streaming 4 x 96 MiB of 1 MiB
# posts): its RSS grew 23 MiB on MariaDB, 32 MiB on SQLite with one row per fetch, 62 and 46 MiB
# with four. Reading 20 to 1000 small posts took the same time with 1, 4 or 16 (within the noise
# of a busy 2-core machine).
ROWS_PER_FETCH = 1
_STREAMED = {"stream_results": True, "yield_per": ROWS_PER_FETCH}
# MariaDB picks a backward scan of all the user's newer posts over the range on `seq` when
# the range looks large (measured: a page 500 posts deep read 511 rows, not 11); the hint
# makes it seek straight to the anchor. SQLite's planner already does (EXPLAIN QUERY PLAN).
_SEEK_HINT = "FORCE INDEX (ix_posts_user_id_seq)"

log = logging.getLogger(__name__)

_posts = cast(Table, PostRow.__table__)
_users = cast(Table, UserRow.__table__)
_anchor = _posts.alias("anchor")
# Built once: each call then only binds parameters (SQLAlchemy caches the compiled form).
_INSERT = insert(_posts)
# The owner's session must still be in the token's generation: the write checks it itself, in
# the same statement (no SELECT before it), and stores nothing when a session ending came first.
_IN_SESSION = (_users.c.id == bindparam("user_id")) & (_users.c.session_generation == bindparam("generation"))
_INSERT_IN_SESSION = insert(_posts).from_select(
    [_posts.c.id, _posts.c.user_id, _posts.c.text, _posts.c.created_at],
    select(
        bindparam("id", type_=_posts.c.id.type),
        bindparam("user_id", type_=_posts.c.user_id.type),
        bindparam("text", type_=_posts.c.text.type),
        bindparam("created_at", type_=_posts.c.created_at.type),
    ).where(_IN_SESSION),
)
# Every listing statement also returns `seq`, where the next read continues (PostRows.last_seq).
_LIST = (
    select(_posts.c.id, _posts.c.text, _posts.c.created_at, _posts.c.seq)
    .where(_posts.c.user_id == bindparam("user_id"))
    .order_by(_posts.c.seq.desc())
    .execution_options(**_STREAMED)
)
_FIRST_PAGE = _LIST.limit(bindparam("count"))
# The first read of a whole listing: its newest posts in one buffered SELECT on the request's own
# connection, each text only when it is at most `small` long (as the database counts length:
# bytes on MySQL/MariaDB, characters on SQLite), so the read holds a bounded amount of memory.
_HEAD = (
    select(
        _posts.c.id,
        case((func.length(_posts.c.text) <= bindparam("small"), _posts.c.text), else_=null()),
        _posts.c.created_at,
    )
    .where(_posts.c.user_id == bindparam("user_id"))
    .order_by(_posts.c.seq.desc())
    .limit(bindparam("count"))
)
_OLDER = (
    _LIST.where(_posts.c.seq < bindparam("below"))
    .limit(bindparam("count"))
    .with_hint(_posts, _SEEK_HINT, "mysql")
    .with_hint(_posts, _SEEK_HINT, "mariadb")
)
# A later page in one statement: the posts from the anchor (`before`) down. The anchor row comes
# first, so no rows at all means "not one of this user's posts"; its text is not sent.
_anchor_seq = (
    select(_anchor.c.seq)
    .where(_anchor.c.id == bindparam("before"), _anchor.c.user_id == bindparam("user_id"))
    .scalar_subquery()
)
_LATER_PAGE = (
    select(
        _posts.c.id,
        case((_posts.c.id == bindparam("before"), null()), else_=_posts.c.text),
        _posts.c.created_at,
        _posts.c.seq,
    )
    .where(_posts.c.user_id == bindparam("user_id"), _posts.c.seq <= _anchor_seq)
    .order_by(_posts.c.seq.desc())
    .limit(bindparam("count"))
    .with_hint(_posts, _SEEK_HINT, "mysql")
    .with_hint(_posts, _SEEK_HINT, "mariadb")
    .execution_options(**_STREAMED)
)
_DELETE_OWNED = delete(_posts).where(_posts.c.id == bindparam("post_id"), _posts.c.user_id == bindparam("user_id"))
_DELETE_OWNED_IN_SESSION = _DELETE_OWNED.where(exists().where(_IN_SESSION))


class PostRows:
    """The posts one listing statement returns, newest first, read as they are iterated.

    They come over a connection of their own, not the request's session: the rows of a streamed
    listing are still being read after the view has returned and the request's teardown has run.
    `close()` (idempotent; iterate once) gives the connection back, also when rows are left unread.
    """

    def __init__(self, connection: Connection, result: CursorResult[*tuple[Any, ...]], limit: int | None) -> None:
        self._connection: Connection | None = connection
        self._result = result
        self._rows = iter(result)
        self._limit = limit
        self._read = 0
        self._finished = False
        self.last_seq: int | None = None

    def __iter__(self) -> Iterator[Post]:
        """The rows themselves: the iterator is its own."""
        return self

    def __next__(self) -> Post:
        """The next post; StopIteration after the last. `last_seq` is then its position."""
        try:
            row = next(self._rows)
        except BaseException:
            # The end, or an error: either the connection was dropped (a disconnect) or the
            # server's error ended the result. Nothing is left to read either way.
            self._finished = True
            raise
        self._read += 1
        # Rows come from our own schema; they are only encoded, so plain tuples suffice.
        post_id, text, created_at, self.last_seq = row
        return Post(post_id, text, created_at)

    def close(self) -> None:
        """Give the connection back to the pool (dropped instead if it cannot be made clean)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # Read to the statement's LIMIT, nothing but the end-of-rows marker is left to read.
        unread = not self._finished and (self._limit is None or self._read < self._limit)
        try:
            if connection.invalidated:
                return  # a database error already dropped it
            if unread and connection.dialect.supports_server_side_cursors and not self._interrupt(connection):
                connection.invalidate()
                return
            self._result.close()
        finally:
            connection.close()

    def _interrupt(self, connection: Connection) -> bool:
        """Stop the server sending the rest of an unbuffered result; False if that failed.

        The MySQL protocol cannot cancel a result: the client must read it all (PyMySQL's close
        does, up to a whole listing, only to discard it) or drop the connection (whose cursor,
        once garbage, then tries to read from the closed socket and prints a traceback on stderr).
        KILL QUERY from another connection ends the statement instead (measured on MariaDB 10.11:
        about 4 MiB of 1 MiB posts still arrive, in 20 ms), and the connection stays usable.
        A KILL QUERY that arrives after the last row is harmless: it does not carry over.
        """
        thread_id = getattr(connection.connection.dbapi_connection, "thread_id", None)
        if thread_id is None:
            return False
        try:
            with connection.engine.connect() as other:
                other.exec_driver_sql(f"KILL QUERY {int(thread_id())}")
        except Exception:
            log.warning("could not interrupt a listing query; dropping its connection", exc_info=True)
            return False
        try:
            for _ in self._rows:  # the rows already sent, up to the server's "interrupted" error
                pass
        except OperationalError:
            pass  # that error ends the result; the connection is clean (a disconnect is invalidated)
        return not connection.invalidated


class PostRepository:
    """Reads and writes posts through one SQLAlchemy session; every query is scoped to an owner.

    The session comes from `open_session` on first use, so a cached listing opens none.
    """

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session

    @property
    def _session(self) -> Session:
        return self._open_session()

    def add(
        self, user_id: uuid.UUID, post_id: uuid.UUID, text: str, created_at: datetime, generation: int | None = None
    ) -> bool:
        """Insert one post in one statement; False when the owner's session left `generation` first.

        With `generation` None the session was checked already. UnknownOwnerError when the user
        is gone (the foreign key refused it).
        """
        values = {"id": post_id, "user_id": user_id, "text": text, "created_at": created_at}
        statement = _INSERT if generation is None else _INSERT_IN_SESSION
        try:
            result = self._session.connection().execute(statement, {**values, "generation": generation})
            self._session.commit()
        except IntegrityError as exc:
            self._session.rollback()
            raise UnknownOwnerError(str(user_id)) from exc
        return bool(result.rowcount)

    def head_for_user(self, user_id: uuid.UUID, count: int, small: int) -> list[Post] | None:
        """The user's newest `count` posts, read at once on this request's connection; None if one is over `small`.

        Most listings are a few short posts: one round trip, no connection of their own. A
        longer one is read again by `stream_for_user` (the long texts were not fetched here).
        """
        rows = self._session.connection().execute(_HEAD, {"user_id": user_id, "count": count, "small": small}).all()
        if any(text is None for _, text, _ in rows):
            return None
        return [Post(post_id, text, created_at) for post_id, text, created_at in rows]

    def stream_for_user(self, user_id: uuid.UUID) -> PostRows:
        """All the user's posts, newest first, in one SELECT (the (user_id, seq) index serves it)."""
        return self._stream(_LIST, {"user_id": user_id}, limit=None)

    def page_for_user(self, user_id: uuid.UUID, before: uuid.UUID | None, count: int) -> PostRows | None:
        """Up to `count` of the user's posts older than `before` (newest if None), in one SELECT.

        None when `before` is not one of this user's posts.
        """
        if before is None:
            return self._stream(_FIRST_PAGE, {"user_id": user_id, "count": count}, limit=count)
        rows = self._stream(_LATER_PAGE, {"user_id": user_id, "before": before, "count": count + 1}, limit=count + 1)
        if next(rows, None) is None:  # not even the anchor
            rows.close()
            return None
        return rows

    def older_reader(self, user_id: uuid.UUID) -> Callable[[int, int], PostRows]:
        """A reader of the user's posts below a position: `read(below, count)` runs one SELECT of at most `count`.

        Bound to the engine, not to this request's session: a streamed listing reads its later
        batches after the request's teardown, each on a connection of its own.
        """
        engine = self._session.get_bind().engine

        def read(below: int, count: int) -> PostRows:
            return _run(engine, _OLDER, {"user_id": user_id, "below": below, "count": count}, limit=count)

        return read

    def delete_owned(self, user_id: uuid.UUID, post_id: uuid.UUID, generation: int | None = None) -> bool:
        """Delete the post if this user owns it (and, given `generation`, the session is still in it); False otherwise.

        One statement either way: the session's check is part of it.
        """
        statement = _DELETE_OWNED if generation is None else _DELETE_OWNED_IN_SESSION
        result = self._session.connection().execute(
            statement, {"post_id": post_id, "user_id": user_id, "generation": generation}
        )
        self._session.commit()
        return bool(result.rowcount)

    def delete_all_for_user(self, user_id: uuid.UUID) -> int:
        """Delete every post of this user in one statement; how many there were."""
        result = self._session.execute(delete(PostRow).where(PostRow.user_id == user_id))
        self._session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _stream(self, statement: Executable, parameters: dict[str, Any], limit: int | None) -> PostRows:
        """Run a listing statement on a connection of its own, from the session's engine.

        The request's session gives its connection back first (its work so far, the token check
        or the short read, was reading): a request never holds two pooled connections. Under load,
        requests that each held one while waiting for a second would wait for one another until
        the pool's timeout (measured: 503 "busy" after 5 s for pages at 16 connections).
        """
        session = self._session
        engine = session.get_bind().engine
        session.close()
        return _run(engine, statement, parameters, limit)


def _run(engine: Engine, statement: Executable, parameters: dict[str, Any], limit: int | None) -> PostRows:
    """Run a listing statement on a connection of its own; the rows give it back when closed."""
    connection = engine.connect()
    try:
        result = connection.execute(statement, parameters)
    except BaseException:
        connection.close()
        raise
    return PostRows(connection, result, limit)
