"""Ending sessions reaches every worker and host at once: sign-out, password change, account deletion.

Two gunicorn instances stand for two hosts (or two workers: each is its own set of processes);
they share the database and the cache (one CACHE_DIR on one host, or Redis across hosts). A
session ended through one is refused by the other well within the contract's second (a worker
trusts the generation it read for half of it), and a dead account's posts are never listed again.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select

from models.tables import PostRow, UserRow
from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, add_post, list_posts, sign_up
from tests.support.api import ADD, CHANGE_PASSWORD, DELETE_ACCOUNT, LIST, PASSWORD, REFRESH, SIGN_OUT, bearer
from tests.support.gunicorn import LiveServer
from tests.support.redis import RedisServer

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a brand new passphrase"
WITHIN_SECONDS = 1.0


def _listing_status(server: LiveServer, token: str) -> int:
    return requests.get(server.base + LIST, headers={**bearer(token), **CLOSE}, timeout=TIMEOUT).status_code


def _refresh_status(server: LiveServer, token: str) -> int:
    return requests.get(server.base + REFRESH, headers={"refresh-token": token, **CLOSE}, timeout=TIMEOUT).status_code


def _refused_within(server: LiveServer, token: str, ended_at: float) -> float:
    """Seconds from the end of the session to the first 401 on `server` (asserted within the bound)."""
    while (status := _listing_status(server, token)) != 401:
        assert status == 200, status
        assert time.monotonic() - ended_at < WITHIN_SECONDS, "old token still accepted after a second"
    return time.monotonic() - ended_at


def _hosts(start_server: StartServer, database_url: str, shared: dict[str, str]) -> tuple[LiveServer, LiveServer]:
    return start_server(database_url, **shared), start_server(database_url, create_tables=False, **shared)


@pytest.fixture
def one_host_cache(tmp_path: Path) -> dict[str, str]:
    """Two instances on one host share the filesystem cache, as every worker of one gunicorn does."""
    cache_dir = tmp_path / "shared-cache"
    cache_dir.mkdir()
    return {"CACHE_DIR": str(cache_dir)}


def test_sign_out_through_one_process_is_refused_by_another(
    start_server: StartServer, database_url: str, one_host_cache: dict[str, str]
) -> None:
    first, second = _hosts(start_server, database_url, one_host_cache)
    user = sign_up(first.base, "ada@example.com")
    assert _listing_status(first, user["access_token"]) == 200  # its cut-off is now cached

    response = requests.post(second.base + SIGN_OUT, headers={"refresh-token": user["refresh_token"]}, timeout=TIMEOUT)
    assert response.status_code == 200
    ended_at = time.monotonic()

    _refused_within(first, user["access_token"], ended_at)
    assert _refresh_status(first, user["refresh_token"]) == 401


def test_a_password_change_on_one_host_ends_the_old_tokens_on_the_other(
    start_server: StartServer, shared_database: str, redis_server: RedisServer
) -> None:
    first, second = _hosts(start_server, shared_database, {"REDIS_URL": redis_server.url})
    user = sign_up(first.base, "ada@example.com")
    assert _listing_status(first, user["access_token"]) == 200

    response = requests.post(
        second.base + CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(user["access_token"]),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    ended_at = time.monotonic()
    fresh = response.json()

    _refused_within(first, user["access_token"], ended_at)
    assert _refresh_status(first, user["refresh_token"]) == 401
    assert _listing_status(first, fresh["access_token"]) == 200
    assert _refresh_status(first, fresh["refresh_token"]) == 200


def test_a_deleted_account_is_gone_from_every_host_and_cache(
    start_server: StartServer, shared_database: str, redis_server: RedisServer
) -> None:
    first, second = _hosts(start_server, shared_database, {"REDIS_URL": redis_server.url})
    user = sign_up(first.base, "ada@example.com")
    add_post(first.base, user["access_token"], "soon gone")
    assert [post["text"] for post in list_posts(first.base, user["access_token"])] == ["soon gone"]  # cached
    assert redis_server.client().get(f"posts-api:l:{user['id']}")

    response = requests.delete(
        second.base + DELETE_ACCOUNT, json={"password": PASSWORD}, headers=bearer(user["access_token"]), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    ended_at = time.monotonic()

    _refused_within(first, user["access_token"], ended_at)
    assert _refresh_status(first, user["refresh_token"]) == 401
    # The cached listing is gone; a worker still trusting the old generation for its last half
    # second may have cached the (now empty) listing again, never the deleted posts.
    redis = redis_server.client()
    body = redis.get(f"posts-api:l:{user['id']}")
    assert body is None or b"soon gone" not in body
    engine = create_engine(shared_database)
    try:
        with engine.connect() as connection:
            user_id = uuid.UUID(user["id"])
            assert connection.execute(select(func.count(UserRow.id)).where(UserRow.id == user_id)).scalar_one() == 0
            assert connection.execute(select(func.count()).where(PostRow.user_id == user_id)).scalar_one() == 0
    finally:
        engine.dispose()
    again = sign_up(second.base, "ada@example.com")
    assert list_posts(first.base, again["access_token"]) == []


def test_add_posts_racing_the_account_deletion_leave_no_orphan_and_no_500(
    start_server: StartServer, shared_database: str
) -> None:
    server = start_server(shared_database)
    user = sign_up(server.base, "ada@example.com")
    token = user["access_token"]

    def add(index: int) -> int:
        response = requests.post(
            server.base + ADD, json={"text": f"race {index}"}, headers={**bearer(token), **CLOSE}, timeout=TIMEOUT
        )
        return response.status_code

    def delete() -> int:
        time.sleep(0.05)  # let some posts land first
        response = requests.delete(
            server.base + DELETE_ACCOUNT,
            json={"password": PASSWORD},
            headers={**bearer(token), **CLOSE},
            timeout=TIMEOUT,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        deletion = pool.submit(delete)
        statuses: list[Any] = list(pool.map(add, range(40)))
    assert deletion.result() == 200
    assert set(statuses) <= {200, 401}, statuses
    engine = create_engine(shared_database)
    try:
        with engine.connect() as connection:
            orphans = connection.execute(
                select(func.count()).select_from(PostRow).where(PostRow.user_id == uuid.UUID(user["id"]))
            ).scalar_one()
    finally:
        engine.dispose()
    assert orphans == 0
    assert "Traceback" not in server.log(), server.log_tail()
