"""Our ceilings: bare Flask views served by the same `gunicorn -c gunicorn.conf.py` as the service.

- `GET /`: a constant small JSON. A cached get_my_posts's ratio to it is what the service adds
  on top of a bare Flask view (routing, auth, cache, serialization).
- `POST /write?user_id=<uuid>`: the JSON body's `text` stored as one post of that user, in the
  service's row shape and `posts` table, with one raw INSERT and a COMMIT on a reused PyMySQL
  connection (no pool library); answers `{"id": ...}` as add-post does. A write's ratio to it is
  what the service adds to the database's own cost.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import pymysql  # type: ignore[import-untyped, unused-ignore]  # no bundled stubs
from flask import Flask, Response, request

BODY = b'{"message": "ceiling"}'
INSERT = "INSERT INTO posts (id, user_id, text, created_at) VALUES (%s, %s, %s, %s)"

app = Flask(__name__)


class FreeList:
    """Idle connections to one database, reused across requests: as many as the worker ever served at once."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.hostname:
            raise ValueError(f"not a MySQL/MariaDB URL: {parts.scheme}://{parts.hostname}")
        self._arguments = {
            "host": parts.hostname,
            "port": parts.port or 3306,
            "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "database": parts.path.lstrip("/"),
            "charset": "utf8mb4",
            "connect_timeout": 2,
            "read_timeout": 10,
            "write_timeout": 10,
        }
        # deque.append and deque.pop are atomic: threads and greenlets need no lock around them.
        self._idle: deque[Any] = deque()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """An idle connection, or a new one; kept for reuse unless the request failed with it."""
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = pymysql.connect(**self._arguments)
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        self._idle.append(connection)


@cache
def writers() -> FreeList:
    """This worker's write connections."""
    return FreeList(os.environ["DATABASE_URL"])


@app.get("/")
def constant() -> Response:
    """A constant small JSON body."""
    return Response(BODY, mimetype="application/json")


@app.post("/write")
def write() -> Response:
    """Insert the body's text as a new post of ?user_id= and commit; its id."""
    text = orjson.loads(request.get_data())["text"]
    post_id = str(uuid.uuid4())
    # Naive UTC with microseconds, as the service's UTCDateTime column stores it.
    created_at = datetime.now(UTC).replace(tzinfo=None)
    with writers().connection() as connection:
        with connection.cursor() as cursor:
            cursor.execute(INSERT, (post_id, request.args["user_id"], text, created_at))
        connection.commit()
    return Response(orjson.dumps({"id": post_id}), mimetype="application/json")
