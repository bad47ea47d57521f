"""Posts written straight into the database (large listings in seconds) and the listing they must give."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pymysql  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.engine import make_url

from models.tables import PostRow

_posts = cast(Table, PostRow.__table__)
# Rows per INSERT statement: many small posts per round trip, never near max_allowed_packet.
BATCH_BYTES = 4 * 1024 * 1024


def insert_posts(engine: Engine, user_id: uuid.UUID | str, texts: Iterable[str]) -> list[uuid.UUID]:
    """Insert posts for the user, oldest first (in the order given), in multi-row INSERTs; their ids."""
    owner = uuid.UUID(str(user_id))
    start = datetime.now(UTC) - timedelta(days=1)
    ids: list[uuid.UUID] = []
    batch: list[dict[str, Any]] = []
    size = 0
    with engine.begin() as connection:
        for index, text in enumerate(texts):
            post_id = uuid.uuid4()
            ids.append(post_id)
            batch.append(
                {"id": post_id, "user_id": owner, "text": text, "created_at": start + timedelta(microseconds=index)}
            )
            size += len(text)
            if size >= BATCH_BYTES:
                connection.execute(insert(_posts), batch)
                batch, size = [], 0
        if batch:
            connection.execute(insert(_posts), batch)
    return ids


def expected_listing(engine: Engine, user_id: uuid.UUID | str) -> bytes:
    """The user's listing encoded as the service always did: one orjson.dumps of every post, newest first."""
    query = (
        select(_posts.c.id, _posts.c.text, _posts.c.created_at)
        .where(_posts.c.user_id == uuid.UUID(str(user_id)))
        .order_by(_posts.c.seq.desc())
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return orjson.dumps([{"id": row.id, "text": row.text, "created_at": row.created_at} for row in rows])


def kill_connections(database_url: str) -> int:
    """MariaDB: KILL CONNECTION of every other client connected to this database (the service's pool); how many."""
    url = make_url(database_url)
    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.username, password=url.password or "", connect_timeout=5
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                (url.database,),
            )
            ids = [row[0] for row in cursor.fetchall()]
            for connection_id in ids:
                cursor.execute(f"KILL CONNECTION {int(connection_id)}")
        return len(ids)
    finally:
        connection.close()
