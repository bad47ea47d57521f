"""Queries on the password_reset_tokens and password_reset_mails tables (account recovery)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.entities import ResetToken
from models.tables import ResetMailRow, ResetTokenRow, UserRow


@dataclass(frozen=True)
class MailWindow:
    """The per-account limit on reset mails: at most `mails` in any span of time of length `length`."""

    mails: int
    length: timedelta


class ResetTokenRepository:
    """Reads and writes reset tokens through one SQLAlchemy session, opened by `open_session` on first use."""

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session

    @property
    def _session(self) -> Session:
        return self._open_session()

    def issue(
        self, email_address: str, token_hash: str, now: datetime, lifetime: timedelta, window: MailWindow
    ) -> uuid.UUID | None:
        """Store a new token for the account with this email, replacing its older one, and log its mail.

        One transaction. Answers the account's id, or None when there is no such account or it
        had `window.mails` mails issued in the window ending `now` (nothing changes then). The
        account is locked for the transaction, so concurrent requests for one account on several
        hosts take turns and count exactly; two that still collide on the unique user_id leave
        one token, and the loser gets None.
        """
        session = self._session
        try:
            # Lock the account first, by a write that changes nothing: MySQL holds the row lock
            # until the commit, and SQLite (whose driver opens a transaction only at a write)
            # takes its write lock. Concurrent requests for one account then count in turn.
            session.execute(
                update(UserRow)
                .where(UserRow.email_address == email_address)
                .values(session_generation=UserRow.session_generation)
            )
            account = session.execute(
                select(UserRow.id, UserRow.session_generation).where(UserRow.email_address == email_address)
            ).one_or_none()
            if account is None:
                return None
            since = now - window.length
            # A locking read too: it sees the latest committed mails even if this session read
            # before (a plain read would use the transaction's older snapshot on MySQL).
            recent = session.execute(
                select(ResetMailRow.seq)
                .where(ResetMailRow.user_id == account.id, ResetMailRow.issued_at >= since)
                .with_for_update()
            ).all()
            if len(recent) >= window.mails:
                session.rollback()
                return None
            session.execute(
                delete(ResetMailRow).where(ResetMailRow.user_id == account.id, ResetMailRow.issued_at < since)
            )
            session.execute(delete(ResetTokenRow).where(ResetTokenRow.user_id == account.id))
            session.execute(
                insert(ResetTokenRow).values(
                    token_hash=token_hash,
                    user_id=account.id,
                    created_at=now,
                    expires_at=now + lifetime,
                    session_generation=account.session_generation,
                )
            )
            session.execute(insert(ResetMailRow).values(user_id=account.id, issued_at=now))
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        except BaseException:
            session.rollback()
            raise
        account_id: uuid.UUID = account.id
        return account_id

    def find(self, token_hash: str) -> ResetToken | None:
        """The token with this hash, if one is stored (expired or not)."""
        row = self._session.execute(
            select(ResetTokenRow.user_id, ResetTokenRow.expires_at, ResetTokenRow.session_generation).where(
                ResetTokenRow.token_hash == token_hash
            )
        ).one_or_none()
        if row is None:
            return None
        return ResetToken(user_id=row.user_id, expires_at=row.expires_at, session_generation=row.session_generation)

    def spend(self, token_hash: str) -> bool:
        """Delete the token: True for the one caller that deleted it (single use under concurrency)."""
        result = self._session.execute(delete(ResetTokenRow).where(ResetTokenRow.token_hash == token_hash))
        self._session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
