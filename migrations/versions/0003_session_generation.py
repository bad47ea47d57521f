"""Replace users.tokens_valid_after by users.session_generation (sessions end exactly).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Every token carries the generation its account had when the token's credentials or session
were checked; ending the sessions adds one. A counter needs no clock: a sign-in or refresh that
read the old generation issues tokens that are refused once the ending commits. Accounts that
had signed out start at 1, so tokens issued before the upgrade (generation 0) stay refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the counter (0, or 1 where a cut-off was set), then drop the cut-off."""
    op.add_column("users", sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
    users = sa.table("users", sa.column("session_generation", sa.Integer()), sa.column("tokens_valid_after"))
    op.execute(users.update().where(users.c.tokens_valid_after.is_not(None)).values(session_generation=1))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_valid_after")


def downgrade() -> None:
    """Bring the cut-off back (now, where sessions had ended, so no older token revives) and drop the counter."""
    op.add_column(
        "users",
        sa.Column(
            "tokens_valid_after",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
    )
    users = sa.table("users", sa.column("session_generation", sa.Integer()), sa.column("tokens_valid_after"))
    op.execute(users.update().where(users.c.session_generation > 0).values(tokens_valid_after=sa.func.now()))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
