"""Benchmark data: accounts made through the API (real tokens), posts bulk-inserted with SQL."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert

from models.tables import PostRow, UserRow

PASSWORD = "bench-password-1"
POST_TEXT = "A benchmark post of a realistic tweet-like length, written once and listed many times. " * 2
INSERT_BATCH = 5000
TIMEOUT = 60


def post_json(url: str, payload: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """POST a JSON object and return the decoded 200 answer (RuntimeError otherwise)."""
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - our own server
        body: dict[str, Any] = json.loads(response.read())
        return body


def get_status(url: str, token: str) -> int:
    """GET with the bearer token; the status code (the body is read and dropped)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Connection": "close"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - our own server
        response.read()
        status: int = response.status
        return status


def get_body(url: str, token: str | None = None) -> bytes:
    """GET (with the bearer token, if any) and return the 200 answer's body (HTTPError otherwise)."""
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own server
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - our own server
        body: bytes = response.read()
        return body


def sign_up(base: str, email: str) -> tuple[uuid.UUID, str]:
    """Create an account through the API; its id and access token."""
    body = post_json(base + "/api/v1/auth/sign_up", {"email_address": email, "password": PASSWORD})
    return uuid.UUID(body["id"]), str(body["access_token"])


def sign_in(base: str, email: str) -> str:
    """Sign in to an account made by `sign_up`; a fresh access token."""
    body = post_json(base + "/api/v1/auth/sign_in", {"email_address": email, "password": PASSWORD})
    return str(body["access_token"])


def post_rows(user_id: uuid.UUID, count: int, text: str = POST_TEXT) -> Iterator[dict[str, Any]]:
    """Row values for `count` posts of one user, oldest first."""
    start = datetime.now(UTC) - timedelta(days=1)
    for index in range(count):
        yield {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "text": text,
            "created_at": start + timedelta(microseconds=index),
        }


def insert_posts(engine: Engine, rows: Iterator[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert rows in multi-row batches; the ids inserted."""
    ids: list[uuid.UUID] = []
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for row in rows:
            batch.append(row)
            if len(batch) >= INSERT_BATCH:
                connection.execute(insert(PostRow), batch)
                ids.extend(item["id"] for item in batch)
                batch = []
        if batch:
            connection.execute(insert(PostRow), batch)
            ids.extend(item["id"] for item in batch)
    return ids


def insert_users(engine: Engine, count: int, tag: str) -> list[uuid.UUID]:
    """Insert accounts directly (no usable password) to own bulk posts; their ids."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    rows: list[dict[str, Any]] = [
        {
            "id": user_id,
            "email_address": f"filler-{tag}-{index}@bench.example.com",
            "password_hash": "not-a-hash",
            "created_at": now,
            "updated_at": now,
        }
        for index, user_id in enumerate(ids)
    ]
    with engine.begin() as connection:
        for start in range(0, len(rows), INSERT_BATCH):
            connection.execute(insert(UserRow), rows[start : start + INSERT_BATCH])
    return ids


def delete_posts_of(engine: Engine, user_id: uuid.UUID) -> None:
    """Remove every post of the user (keeps the add-post workloads from filling the disk)."""
    with engine.begin() as connection:
        connection.execute(delete(PostRow).where(PostRow.user_id == user_id))
