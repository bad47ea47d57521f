"""The feed of session endings (session_endings, session_feed): workers learn of endings without a read per request.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

Every ending of an account's sessions (sign-out, password change or reset, deletion) adds a row,
in the transaction that makes it, numbered by session_feed's one row (whose lock orders them as
they commit). Workers read the new rows twice a second and trust the generations they remember
for as long as they keep reading (services/sessions.py). Nothing to carry over: a worker's memory
starts empty. Column types are spelled out as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}
BIG_INTEGER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create both tables and the feed's row (at 0)."""
    op.create_table(
        "session_endings",
        sa.Column("seq", BIG_INTEGER, nullable=False, autoincrement=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_session_endings"),
        **MYSQL_TABLE_ARGS,
    )
    feed = op.create_table(
        "session_feed",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("last_seq", BIG_INTEGER, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_session_feed"),
        **MYSQL_TABLE_ARGS,
    )
    op.bulk_insert(feed, [{"id": 1, "last_seq": 0}])


def downgrade() -> None:
    """Drop both tables (releases before this one read every account's row instead)."""
    op.drop_table("session_feed")
    op.drop_table("session_endings")
