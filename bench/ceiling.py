"""The ceilings: bare Flask views the service's workloads are judged against, served by the same gunicorn config.

`gunicorn -c gunicorn.conf.py bench.ceiling:app`, with DATABASE_URL set for the database views:

- `GET /`: a constant small JSON. Whatever the service adds on top of a bare Flask view (routing
  through flask-smorest, auth, cache, serialization) is what the ratio to it measures.
- `POST /write?user_id=<uuid>`: the JSON body's `text` as one post of that user, the row shape
  the service writes (uuid id, user_id, text, created_at) into the same `posts` table, with one raw
  INSERT and a COMMIT on a reused connection. Answers `{"id": ...}` as add-post does.
- `GET /read?user_id=<uuid>`: that user's posts, newest first, in one raw SELECT on a reused
  autocommit connection, encoded with orjson in the service's shape (id, text, created_at).

A database-bound workload's ratio to these says what the service adds to the database's own cost.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from functools import cache

import orjson
from flask import Flask, Response, request

from bench.rawdb import FreeList

BODY = b'{"message": "ceiling"}'
INSERT = "INSERT INTO posts (id, user_id, text, created_at) VALUES (%s, %s, %s, %s)"
SELECT = "SELECT id, text, created_at FROM posts WHERE user_id = %s ORDER BY seq DESC"

app = Flask(__name__)


@cache
def writers() -> FreeList:
    """This worker's write connections (autocommit off: INSERT, then COMMIT)."""
    return FreeList(os.environ["DATABASE_URL"], autocommit=False)


@cache
def readers() -> FreeList:
    """This worker's read connections (autocommit on: a SELECT leaves no transaction open)."""
    return FreeList(os.environ["DATABASE_URL"], autocommit=True)


@app.get("/")
def constant() -> Response:
    """A constant small JSON body."""
    return Response(BODY, mimetype="application/json")


@app.post("/write")
def write() -> Response:
    """Insert the body's text as a new post of ?user_id= and commit; its id."""
    text = orjson.loads(request.get_data())["text"]
    post_id = str(uuid.uuid4())
    # Stored as naive UTC with microseconds, as the service's UTCDateTime column type does.
    created_at = datetime.now(UTC).replace(tzinfo=None)
    with writers().connection() as connection:
        with connection.cursor() as cursor:
            cursor.execute(INSERT, (post_id, request.args["user_id"], text, created_at))
        connection.commit()
    return Response(orjson.dumps({"id": post_id}), mimetype="application/json")


@app.get("/read")
def read() -> Response:
    """The posts of ?user_id=, newest first, as the service's JSON listing."""
    with readers().connection() as connection, connection.cursor() as cursor:
        cursor.execute(SELECT, (request.args["user_id"],))
        rows = cursor.fetchall()
    # MariaDB's UUID column reads back as the canonical string; created_at as naive UTC.
    body = orjson.dumps(
        [{"id": post_id, "text": text, "created_at": created_at} for post_id, text, created_at in rows],
        option=orjson.OPT_NAIVE_UTC,
    )
    return Response(body, mimetype="application/json")
