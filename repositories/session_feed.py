"""The feed of session endings: written with each ending, read by every worker (models.tables.SessionEndingRow)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from models.tables import SessionEndingRow, SessionFeedRow
from repositories.database import down_as_unavailable

# Endings kept; a worker that fell further behind forgets every generation it remembers instead.
RETAINED_ENDINGS = 10_000

_endings = cast(Table, SessionEndingRow.__table__)
_feed = cast(Table, SessionFeedRow.__table__)
_NEXT_SEQ = update(_feed).where(_feed.c.id == 1).values(last_seq=_feed.c.last_seq + 1)
_LAST_SEQ = select(_feed.c.last_seq).where(_feed.c.id == 1)
_ADD = insert(_endings)
_PRUNE = delete(_endings).where(_endings.c.seq <= bindparam("oldest"))
_SINCE = (
    select(_endings.c.seq, _endings.c.user_id, _endings.c.generation)
    .where(_endings.c.seq > bindparam("after"), _endings.c.seq <= bindparam("upto"))
    .order_by(_endings.c.seq)
)


@dataclass(frozen=True)
class Endings:
    """What the feed holds after a seq: its newest seq, the endings in order, and whether none is missing.

    Each ending is (account, its new generation), the generation None once the account is gone.
    """

    last_seq: int
    changes: list[tuple[uuid.UUID, int | None]]
    complete: bool


def record_ending(session: Session, user_id: uuid.UUID, generation: int | None) -> None:
    """Add an ending to the feed in `session`'s transaction (the caller commits it with the ending itself).

    The feed row's update takes its lock until the commit, so seqs are given in commit order:
    a reader that sees seq N has every ending up to N.
    """
    connection = session.connection()
    connection.execute(_NEXT_SEQ)
    seq = int(connection.execute(_LAST_SEQ).scalar_one())
    connection.execute(_ADD, {"seq": seq, "user_id": user_id, "generation": generation})
    if seq > RETAINED_ENDINGS:
        connection.execute(_PRUNE, {"oldest": seq - RETAINED_ENDINGS})


class SessionFeedRepository:
    """Reads the feed through the request's session (opened by `open_session` on first use)."""

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session

    def since(self, seq: int | None) -> Endings:
        """The endings after `seq` (none when `seq` is None: a reader starting out needs only the newest seq).

        One SELECT when nothing ended since, two otherwise, in one transaction (one snapshot).
        DatabaseUnavailableError when the database is down (see `down_as_unavailable`).
        """
        session = self._open_session()
        with down_as_unavailable(session):
            connection = session.connection()
            last = connection.execute(_LAST_SEQ).scalar_one_or_none()
            last_seq = 0 if last is None else int(last)
            if seq is None or last_seq <= seq:
                return Endings(last_seq, [], True)
            rows = connection.execute(_SINCE, {"after": seq, "upto": last_seq}).all()
        complete = bool(rows) and rows[0].seq == seq + 1
        return Endings(last_seq, [(row.user_id, row.generation) for row in rows], complete)
