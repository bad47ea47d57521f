"""Queries on the posts table, as prebuilt Core statements: the hot paths skip the ORM's per-call work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.entities import Post
from models.tables import PostRow
from repositories.errors import UnknownOwnerError

_posts = cast(Table, PostRow.__table__)
# Built once: each call then only binds parameters (SQLAlchemy caches the compiled form).
_INSERT = insert(_posts)
_LIST = (
    select(_posts.c.id, _posts.c.text, _posts.c.created_at)
    .where(_posts.c.user_id == bindparam("user_id"))
    .order_by(_posts.c.seq.desc())
)
_SEQ_OF_OWNED = select(_posts.c.seq).where(
    _posts.c.id == bindparam("post_id"), _posts.c.user_id == bindparam("user_id")
)
_FIRST_PAGE = _LIST.limit(bindparam("limit"))
_PAGE_BEFORE = _LIST.where(_posts.c.seq < bindparam("before_seq")).limit(bindparam("limit"))
_DELETE_OWNED = delete(_posts).where(_posts.c.id == bindparam("post_id"), _posts.c.user_id == bindparam("user_id"))


class PostRepository:
    """Reads and writes posts through one SQLAlchemy session; every query is scoped to an owner.

    The session comes from `open_session` on first use, so a cached listing opens none.
    """

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session

    @property
    def _session(self) -> Session:
        return self._open_session()

    def add(self, user_id: uuid.UUID, post_id: uuid.UUID, text: str, created_at: datetime) -> None:
        """Insert one post in one statement; UnknownOwnerError when the user is gone (the foreign key refused it)."""
        try:
            self._session.connection().execute(
                _INSERT, {"id": post_id, "user_id": user_id, "text": text, "created_at": created_at}
            )
            self._session.commit()
        except IntegrityError as exc:
            self._session.rollback()
            raise UnknownOwnerError(str(user_id)) from exc

    def list_for_user(self, user_id: uuid.UUID) -> list[Post]:
        """The user's posts, newest first, in one SELECT (the (user_id, seq) index serves it)."""
        rows = self._session.connection().execute(_LIST, {"user_id": user_id})
        # Rows come from our own schema; they are only encoded, so plain tuples suffice.
        return [Post(*row) for row in rows]

    def list_page(self, user_id: uuid.UUID, limit: int, before: uuid.UUID | None) -> list[Post] | None:
        """Up to `limit` of the user's posts, newest first, older than their post `before` if given.

        None when `before` is not one of the user's posts. The (user_id, seq) index serves both queries.
        """
        connection = self._session.connection()
        if before is None:
            rows = connection.execute(_FIRST_PAGE, {"user_id": user_id, "limit": limit})
        else:
            before_seq = connection.execute(_SEQ_OF_OWNED, {"post_id": before, "user_id": user_id}).scalar()
            if before_seq is None:
                return None
            rows = connection.execute(_PAGE_BEFORE, {"user_id": user_id, "before_seq": before_seq, "limit": limit})
        return [Post(*row) for row in rows]

    def delete_owned(self, user_id: uuid.UUID, post_id: uuid.UUID) -> bool:
        """Delete the post if this user owns it, in one statement; False when nothing matched."""
        result = self._session.connection().execute(_DELETE_OWNED, {"post_id": post_id, "user_id": user_id})
        self._session.commit()
        return bool(result.rowcount)

    def delete_all_for_user(self, user_id: uuid.UUID) -> int:
        """Delete every post of this user in one statement; how many there were."""
        result = self._session.execute(delete(PostRow).where(PostRow.user_id == user_id))
        self._session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]
