"""Create users and posts.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The column types are spelled out here rather than imported from models.types, so
this revision keeps creating the same schema if those definitions change later.
They render the same DDL as the models: CHAR(32) UUIDs, DATETIME(6) on MySQL/MariaDB,
binary-collated utf8mb4 emails and LONGTEXT post bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
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
    """Create users, then posts with its foreign key and (user_id, seq) index."""
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "email_address",
            sa.String(254).with_variant(
                mysql.VARCHAR(254, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", _utc_datetime(), nullable=False),
        sa.Column("updated_at", _utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_address", name=op.f("uq_users_email_address")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "posts",
        # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "text",
            sa.Text().with_variant(mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("created_at", _utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_posts")),
        sa.UniqueConstraint("id", name=op.f("uq_posts_id")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_posts_user_id_users"), ondelete="CASCADE"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_posts_user_id_seq", "posts", ["user_id", "seq"], unique=False)


def downgrade() -> None:
    """Drop posts (with its index) and users."""
    # No separate drop_index: on MySQL/MariaDB the index backs the foreign key and
    # cannot be dropped on its own; dropping the table removes it.
    op.drop_table("posts")
    op.drop_table("users")
