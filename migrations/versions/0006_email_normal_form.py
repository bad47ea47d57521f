"""Store every email in its normal form: lowercased and NFC until neither changes anything.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Before this release an address was lowercased after Unicode NFC once, which is not idempotent:
lowercasing can undo NFC (a capital with a combining mark lowers to a letter that NFC composes).
Sign-up applied that pass twice and every other entry once, so a few addresses were stored in
a form that sign-in no longer reached. The service now looks addresses up by their fixed point
(services/emails.py); this revision moves each stored address there. Stored addresses were
validated and lowercased already, so lowercasing and NFC alone reach the same fixed point; the
function is copied here so the revision keeps doing what it did if the service's changes.

If another account already holds an address's normal form, the two were one address all along:
the row is left as it is and its id is logged (an operator decides which account stays), never
merged. Downgrading keeps the normal forms (the previous release reads them as any address).
Offline (`--sql`) this revision changes nothing: the rewrite needs to read the rows.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(f"alembic.versions.{revision}")
MAX_PASSES = 4


def normal_form(address: str) -> str:
    """A stored (valid, lowercased) address lowercased and put in NFC until neither changes anything."""
    current = address
    for _ in range(MAX_PASSES):
        folded = unicodedata.normalize("NFC", current.lower())
        if folded == current:
            break
        current = folded
    return current


def upgrade() -> None:
    """Rewrite each address that is not in its normal form, unless another account holds that form."""
    if context.is_offline_mode():
        log.warning("offline: stored emails are not moved to their normal form; run this revision online")
        return
    connection = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("email_address", sa.String(254)))
    # Read in one pass, changed afterwards: the stream holds the connection until it ends.
    moves = [
        (row.id, normal)
        for row in connection.execution_options(stream_results=True, yield_per=1000).execute(
            sa.select(users.c.id, users.c.email_address)
        )
        if (normal := normal_form(row.email_address)) != row.email_address
    ]
    moved = 0
    for user_id, normal in moves:
        taken = connection.scalar(sa.select(users.c.id).where(users.c.email_address == normal))
        if taken is not None:
            log.warning(
                "account %s keeps its stored email: account %s already has its normal form; decide which stays",
                user_id,
                taken,
            )
            continue
        connection.execute(users.update().where(users.c.id == user_id).values(email_address=normal))
        moved += 1
    log.info("moved %d stored email(s) to their normal form", moved)


def downgrade() -> None:
    """Nothing to undo: a normal form is a valid address for the previous release too."""
