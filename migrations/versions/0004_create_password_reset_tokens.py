"""Create password_reset_tokens (account recovery by email).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

One row per account with a pending reset: the sha256 of the token (never the token), the
account's session generation at issue (an ending of its sessions since spends the token), its
expiry, and the account's reset-mail window (start and count) for the per-address mail limit.
Column types are spelled out as in 0001, so this revision keeps creating the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
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


def upgrade() -> None:
    """Create the table, its unique user_id and its foreign key to users (ON DELETE CASCADE)."""
    op.create_table(
        "password_reset_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _utc_datetime(), nullable=False),
        sa.Column("expires_at", _utc_datetime(), nullable=False),
        sa.Column("session_generation", sa.Integer(), nullable=False),
        sa.Column("window_started_at", _utc_datetime(), nullable=False),
        sa.Column("mails_in_window", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_password_reset_tokens")),
        sa.UniqueConstraint("user_id", name=op.f("uq_password_reset_tokens_user_id")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_reset_tokens_user_id_users"), ondelete="CASCADE"
        ),
        **MYSQL_TABLE_ARGS,
    )


def downgrade() -> None:
    """Drop the table: pending reset links stop working."""
    op.drop_table("password_reset_tokens")
