"""Queries on the users table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.entities import User
from models.tables import PostRow, UserRow
from repositories.errors import DuplicateEmailError

# What the rest of the service sees of an account (never the password hash).
_USER_COLUMNS = (UserRow.id, UserRow.email_address, UserRow.created_at, UserRow.updated_at)


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

    def credentials_by_email(self, email_address: str) -> tuple[User, str, datetime | None] | None:
        """The account, its password hash and its session cut-off, for sign-in, in one SELECT."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.password_hash, UserRow.tokens_valid_after).where(
                UserRow.email_address == email_address
            )
        ).one_or_none()
        if row is None:
            return None
        return _user(row), row.password_hash, row.tokens_valid_after

    def credentials_by_id(self, user_id: uuid.UUID) -> tuple[User, str] | None:
        """The account and its password hash, to confirm a signed-in user's password, in one SELECT."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.password_hash).where(UserRow.id == user_id)
        ).one_or_none()
        return None if row is None else (_user(row), row.password_hash)

    def cutoff_of(self, user_id: uuid.UUID) -> tuple[bool, datetime | None]:
        """Whether the account exists, and its session cut-off (None: none), in one SELECT."""
        row = self._session.execute(select(UserRow.tokens_valid_after).where(UserRow.id == user_id)).one_or_none()
        return (False, None) if row is None else (True, row.tokens_valid_after)

    def change_password(self, user_id: uuid.UUID, password_hash: str, cutoff: datetime) -> bool:
        """Store a new password hash and end every session before `cutoff`, in one UPDATE; False if no account."""
        result = self._session.execute(
            update(UserRow)
            .where(UserRow.id == user_id)
            .values(password_hash=password_hash, updated_at=cutoff, tokens_valid_after=cutoff)
        )
        self._session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def get_with_tokens_valid_after(self, user_id: uuid.UUID) -> tuple[User, datetime | None] | None:
        """The account and its sign-out cut-off, in the one SELECT refresh already makes."""
        row = self._session.execute(
            select(*_USER_COLUMNS, UserRow.tokens_valid_after).where(UserRow.id == user_id)
        ).one_or_none()
        return None if row is None else (_user(row), row.tokens_valid_after)

    def revoke_tokens(self, user_id: uuid.UUID, issued_at: datetime, now: datetime) -> bool:
        """Set the cut-off to `now` if a token issued at `issued_at` is still valid; False if not.

        One UPDATE: a token already revoked (or a deleted user) matches no row.
        """
        result = self._session.execute(
            update(UserRow)
            .where(
                UserRow.id == user_id,
                or_(UserRow.tokens_valid_after.is_(None), UserRow.tokens_valid_after < issued_at),
            )
            .values(tokens_valid_after=now)
        )
        self._session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

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
        """Delete the account; its posts go with it (ON DELETE CASCADE). False when nothing matched."""
        result = self._session.execute(delete(UserRow).where(UserRow.id == user_id))
        self._session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]
