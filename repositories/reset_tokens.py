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
        had `window.mails` mails issued in the window ending `now` (nothing changes then).

        The account is locked for the transaction, so concurrent requests for one account on
        several hosts take turns and count exactly. Nothing else is locked by a range: rows are
        read plainly (after the lock, so they are the latest) and deleted by their keys, because
        on MySQL a locking read or delete over a range also locks the gap after it, where another
        account's concurrent insert lands: two such transactions deadlock. Two that still collide
        on the unique user_id leave one token, and the loser gets None.
        """
        session = self._session
        # A transaction of its own: its plain reads must be taken once the account's lock is
        # granted, not from a snapshot an earlier read of this session opened (MySQL's
        # repeatable read keeps the first read's snapshot until the transaction ends).
        session.commit()
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
                session.rollback()
                return None
            since = now - window.length
            logged = session.execute(
                select(ResetMailRow.seq, ResetMailRow.issued_at).where(ResetMailRow.user_id == account.id)
            ).all()
            if sum(1 for mail in logged if mail.issued_at >= since) >= window.mails:
                session.rollback()
                return None
            if stale := [mail.seq for mail in logged if mail.issued_at < since]:
                session.execute(delete(ResetMailRow).where(ResetMailRow.seq.in_(stale)))
            older = session.scalar(select(ResetTokenRow.token_hash).where(ResetTokenRow.user_id == account.id))
            if older is not None:
                session.execute(delete(ResetTokenRow).where(ResetTokenRow.token_hash == older))
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
