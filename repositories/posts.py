"""Queries on the posts table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models.entities import Post
from models.tables import PostRow


class PostRepository:
    """Reads and writes posts through one SQLAlchemy session; every query is scoped to an owner."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user_id: uuid.UUID, post_id: uuid.UUID, text: str, created_at: datetime) -> None:
        """Insert one post in one statement."""
        self._session.execute(insert(PostRow).values(id=post_id, user_id=user_id, text=text, created_at=created_at))
        self._session.commit()

    def list_for_user(self, user_id: uuid.UUID) -> list[Post]:
        """The user's posts, newest first, in one SELECT (the (user_id, seq) index serves it)."""
        rows = self._session.execute(
            select(PostRow.id, PostRow.text, PostRow.created_at)
            .where(PostRow.user_id == user_id)
            .order_by(PostRow.seq.desc())
        ).all()
        # Rows come from our own schema; re-validating every field would only cost time.
        return [Post.model_construct(id=row.id, text=row.text, created_at=row.created_at) for row in rows]

    def delete_owned(self, user_id: uuid.UUID, post_id: uuid.UUID) -> bool:
        """Delete the post if this user owns it, in one statement; False when nothing matched."""
        result = self._session.execute(delete(PostRow).where(PostRow.id == post_id, PostRow.user_id == user_id))
        self._session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def delete_all_for_user(self, user_id: uuid.UUID) -> int:
        """Delete every post of this user in one statement; how many there were."""
        result = self._session.execute(delete(PostRow).where(PostRow.user_id == user_id))
        self._session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]
