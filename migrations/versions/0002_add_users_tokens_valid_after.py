"""Add users.tokens_valid_after (sign-out revokes earlier refresh tokens).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Nullable, so existing rows need no value: NULL means no sign-out yet, every unexpired
refresh token stays valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column; DATETIME(6) on MySQL/MariaDB, as models.types.UTCDateTime."""
    op.add_column(
        "users",
        sa.Column(
            "tokens_valid_after",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    """Drop the column (every sign-out is forgotten)."""
    op.drop_column("users", "tokens_valid_after")
