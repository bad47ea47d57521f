"""SQLAlchemy tables: users, their posts, their password reset tokens and reset mails, the feed of session endings."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DDL, ForeignKey, Index, Integer, MetaData, String, Uuid, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.types import BigIntegerPK, EmailString, LongText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations match on every backend."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    """An account. The email is stored lowercase; the unique index decides duplicates."""

    __tablename__ = "users"
    __table_args__ = MYSQL_TABLE_ARGS

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email_address: Mapped[str] = mapped_column(EmailString, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Ending the sessions (sign-out, password change) adds one; a token of an older generation is refused.
    session_generation: Mapped[int] = mapped_column(Integer, server_default="0")


class PostRow(Base):
    """A text post. `seq` gives a stable newest-first order even within one clock tick."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_user_id_seq", "user_id", "seq"),
        MYSQL_TABLE_ARGS,
    )

    seq: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResetTokenRow(Base):
    """A password reset token of an account: only its sha256 is stored, so a copy of the table opens nothing.

    At most one per account (the unique user_id): issuing a new one replaces the old in the same
    transaction, and a reset spends (deletes) it. The mails it went out in are counted apart, in
    ResetMailRow, so neither forgets one.
    """

    __tablename__ = "password_reset_tokens"
    __table_args__ = MYSQL_TABLE_ARGS

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The account's session generation at issue: any ending of its sessions since (a password
    # change or reset, a sign-out) spends the token.
    session_generation: Mapped[int] = mapped_column(Integer)


class ResetMailRow(Base):
    """One reset mail issued to an account, for the per-address mail limit: at most N in any window.

    A log rather than a counter in the token's row, so the limit holds over any span of the
    window's length (not per fixed window) and whatever happens to the token: a newer token or a
    reset forgets no mail. Rows older than the window go when the account's next mail is issued.
    """

    __tablename__ = "password_reset_mails"
    __table_args__ = (
        Index("ix_password_reset_mails_user_id_issued_at", "user_id", "issued_at"),
        MYSQL_TABLE_ARGS,
    )

    seq: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionEndingRow(Base):
    """One ending of an account's sessions (sign-out, password change or reset, deletion), in commit order.

    Written in the transaction that makes the ending (repositories/users.py); each worker reads
    the new rows twice a second and so knows which of the generations it remembers went stale,
    without reading every account's row on every request (services/sessions.py). `seq` comes
    from SessionFeedRow; `generation` is the account's new one, NULL once the account is gone.
    Only the newest rows are kept.
    """

    __tablename__ = "session_endings"
    __table_args__ = MYSQL_TABLE_ARGS

    seq: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True, autoincrement=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    generation: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SessionFeedRow(Base):
    """The feed's one row: the seq of the newest ending. Its row lock orders the endings as they commit."""

    __tablename__ = "session_feed"
    __table_args__ = MYSQL_TABLE_ARGS

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigIntegerPK, server_default="0")


# The feed starts at 0 wherever the table is made (the migration inserts the same row).
event.listen(
    SessionFeedRow.__table__,
    "after_create",
    DDL("INSERT INTO session_feed (id, last_seq) VALUES (1, 0)"),  # type: ignore[no-untyped-call]
)
