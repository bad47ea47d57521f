"""Queries on the users table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.entities import User
from models.tables import PostRow, UserRow
from repositories.database import down_as_unavailable
from repositories.errors import DuplicateEmailError
from repositories.session_feed import record_ending

# What the rest of the service sees of an account (never the password hash).
_USER_COLUMNS = (UserRow.id, UserRow.email_address, UserRow.created_at, UserRow.updated_at)
# The token check's read, on nearly every request: a prebuilt Core statement (no ORM work per call).
_GENERATION = select(UserRow.session_generation).where(UserRow.id == bindparam("user_id"))


def _user(row: Any) -> User:
    return User(id=row.id, email_address=row.email_address, created_at=row.created_at, updated_at=row.updated_at)


class UserRepository:
    """Reads and writes accounts through one SQLAlchemy session, opened by `open_session` on first use."""

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session

    @property
    def _session(self) -> Session:
        return self._open_session()

    def add(self, user: User, password_hash: str) -> None:
        """Insert the account in one statement; the unique index rejects duplicate emails."""
        statement = insert(UserRow).values(
            id=user.id,
            email_address=user.email_address,
            password_hash=password_hash,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
        try:
            self._session.execute(statement)
            self._session.commit()
        except IntegrityError as exc:
            self._session.rollback()
            raise DuplicateEmailError(user.email_address) from exc

    def take_turn(self, *, email_address: str | None = None, user_id: uuid.UUID | None = None) -> None:
        """Lock the account (by email or id) until this session's transaction ends; nothing if there is none.

        By a write that changes nothing: MySQL/MariaDB hold the row lock until the commit or
        rollback, and SQLite (whose driver opens a transaction only at a write) takes its write
        lock. Another session taking a turn on the same account waits meanwhile (at most the
        lock wait, DB_LOCK_WAIT_SECONDS, then "busy").
        """
        match = UserRow.email_address == email_address if user_id is None else UserRow.id == user_id
        self._session.execute(update(UserRow).where(match).values(session_generation=UserRow.session_generation))

    def credentials_by_email(self, email_address: str) -> tuple[User, str, int] | None:
        """The account, its password hash and its session generation, for sign-in, in one SELECT."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.password_hash, UserRow.session_generation).where(
                UserRow.email_address == email_address
            )
        ).one_or_none()
        if row is None:
            return None
        return _user(row), row.password_hash, row.session_generation

    def credentials_by_id(self, user_id: uuid.UUID) -> tuple[User, str, int] | None:
        """The account, its password hash and its session generation, to confirm a signed-in user's password."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.password_hash, UserRow.session_generation).where(UserRow.id == user_id)
        ).one_or_none()
        return None if row is None else (_user(row), row.password_hash, row.session_generation)

    def session_generation(self, user_id: uuid.UUID) -> int | None:
        """The account's session generation (None: no such account), in one SELECT.

        DatabaseUnavailableError when the database is down (known down, unreachable, connection
        lost), so the caller may fall back; other errors (an unmigrated schema, a busy moment:
        no pooled connection free in time, a lock wait) propagate.
        """
        with down_as_unavailable(self._session):
            row = self._session.connection().execute(_GENERATION, {"user_id": user_id}).one_or_none()
        return None if row is None else int(row.session_generation)

    def with_session_generation(self, user_id: uuid.UUID) -> tuple[User, int] | None:
        """The account and its session generation, in the one SELECT refresh makes."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.session_generation).where(UserRow.id == user_id)
        ).one_or_none()
        return None if row is None else (_user(row), row.session_generation)

    def end_sessions(self, user_id: uuid.UUID, generation: int, **changes: Any) -> bool:
        """Move the account to the next session generation, with `changes` to its columns, in one UPDATE.

        Only from `generation`: False when the account is gone or already moved on (a concurrent
        ending won, so the caller's token or credentials are no longer current). The ending goes
        to the feed of endings in the same transaction (repositories/session_feed.py).
        """
        result = self._session.execute(
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.session_generation == generation)
            .values(session_generation=UserRow.session_generation + 1, **changes)
        )
        ended = bool(result.rowcount == 1)  # type: ignore[attr-defined]
        if ended:
            record_ending(self._session, user_id, generation + 1)
            self._session.commit()
        else:
            self._session.rollback()
        return ended

    def change_password(self, user_id: uuid.UUID, generation: int, password_hash: str, changed_at: datetime) -> bool:
        """Store a new password hash and end every session, from `generation` (see end_sessions)."""
        return self.end_sessions(user_id, generation, password_hash=password_hash, updated_at=changed_at)

    def update_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        """Store a re-hash made with stronger parameters (only after they change)."""
        self._session.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash))
        self._session.commit()

    def by_id(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if any."""
        row = self._session.execute(select(*_USER_COLUMNS).where(UserRow.id == user_id)).one_or_none()
        return None if row is None else _user(row)

    def by_email(self, email_address: str) -> User | None:
        """The account with this (normalized) email, if any."""
        row = self._session.execute(select(*_USER_COLUMNS).where(UserRow.email_address == email_address)).one_or_none()
        return None if row is None else _user(row)

    def list_with_post_counts(self) -> list[tuple[User, int]]:
        """Every account, oldest first, with how many posts it has, in one SELECT."""
        rows = self._session.execute(
            select(*_USER_COLUMNS, func.count(PostRow.seq).label("posts"))
            .outerjoin(PostRow, PostRow.user_id == UserRow.id)
            .group_by(*_USER_COLUMNS)
            .order_by(UserRow.created_at, UserRow.email_address)
        ).all()
        return [(_user(row), row.posts) for row in rows]

    def delete(self, user_id: uuid.UUID) -> bool:
        """Delete the account (its posts go with it: ON DELETE CASCADE) and feed its end; False when nothing matched."""
        result = self._session.execute(delete(UserRow).where(UserRow.id == user_id))
        deleted = bool(result.rowcount)  # type: ignore[attr-defined]
        if deleted:
            record_ending(self._session, user_id, None)
        self._session.commit()
        return deleted
