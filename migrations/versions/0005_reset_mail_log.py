"""Count reset mails in a log of their own (password_reset_mails) instead of a window in the token's row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

"At most N reset mails per address per window" now holds over any span of the window's length:
each mail is a row (account, time), counted over the window ending now. The old fixed window
(start and count in password_reset_tokens) let a new window begin at the old one's edge and was
forgotten with the token on a successful reset. Upgrading carries the windows in progress over:
the window's first mail at its start, the others at the latest token's time (the last mail),
which never counts fewer mails than were sent. Column types are spelled out as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}


def _utc_datetime() -> sa.types.TypeEngine[datetime]:
    """models.types.UTCDateTime: naive UTC, with microseconds on MySQL/MariaDB."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _tokens() -> sa.TableClause:
    return sa.table(
        "password_reset_tokens",
        sa.column("user_id", sa.Uuid()),
        sa.column("created_at", _utc_datetime()),
        sa.column("window_started_at", _utc_datetime()),
        sa.column("mails_in_window", sa.Integer()),
    )


def _mails() -> sa.TableClause:
    return sa.table(
        "password_reset_mails",
        sa.column("user_id", sa.Uuid()),
        sa.column("issued_at", _utc_datetime()),
    )


def upgrade() -> None:
    """Create the log, carry each account's current window over into it, drop the window's columns."""
    op.create_table(
        "password_reset_mails",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("issued_at", _utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_password_reset_mails")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_reset_mails_user_id_users"), ondelete="CASCADE"
        ),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "ix_password_reset_mails_user_id_issued_at", "password_reset_mails", ["user_id", "issued_at"], unique=False
    )
    tokens, mails = _tokens(), _mails()
    # One INSERT ... SELECT per mail of the fullest window (the limit is a few mails); offline
    # (`--sql`) there is no count to read, and the limit starts afresh.
    fullest = 0 if context.is_offline_mode() else op.get_bind().scalar(sa.select(sa.func.max(tokens.c.mails_in_window)))
    for mail in range(1, (fullest or 0) + 1):
        issued_at = tokens.c.window_started_at if mail == 1 else tokens.c.created_at
        op.execute(
            mails.insert().from_select(
                ["user_id", "issued_at"],
                sa.select(tokens.c.user_id, issued_at).where(tokens.c.mails_in_window >= mail),
            )
        )
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.drop_column("window_started_at")
        batch.drop_column("mails_in_window")


def downgrade() -> None:
    """Bring the window's columns back, each token's window made of its account's logged mails; drop the log."""
    op.add_column("password_reset_tokens", sa.Column("window_started_at", _utc_datetime(), nullable=True))
    op.add_column("password_reset_tokens", sa.Column("mails_in_window", sa.Integer(), nullable=True))
    tokens, mails = _tokens(), _mails()
    of_account = mails.c.user_id == tokens.c.user_id
    op.execute(
        tokens.update().values(
            window_started_at=sa.func.coalesce(
                sa.select(sa.func.min(mails.c.issued_at)).where(of_account).scalar_subquery(), tokens.c.created_at
            ),
            mails_in_window=sa.func.coalesce(
                sa.select(sa.func.count()).select_from(mails).where(of_account).scalar_subquery(), 1
            ),
        )
    )
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.alter_column("window_started_at", existing_type=_utc_datetime(), nullable=False)
        batch.alter_column("mails_in_window", existing_type=sa.Integer(), nullable=False)
    # No separate drop_index: on MySQL/MariaDB the index backs the foreign key.
    op.drop_table("password_reset_mails")
