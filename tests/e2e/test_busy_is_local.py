"""Through a real gunicorn on MariaDB: one account's locked row is that account's busy moment, no one else's.

Another session holds one account's row (`SELECT ... FOR UPDATE`, as an operator's console, a
long migration or a stuck transaction would) for a few seconds. That account's sign-out waits
for the lock at most DB_LOCK_WAIT_SECONDS and answers 503 "Server busy" with Retry-After; every
other user's add-post and listing meanwhile answers 200; the breaker never opens, so the account
is served again as soon as the lock is gone.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, select

from models.tables import UserRow
from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, sign_up
from tests.support.api import ADD, LIST, SIGN_OUT, bearer

pytestmark = pytest.mark.e2e

LOCK_SECONDS = 6.0
OTHER_USERS = 6


def _pairs_until(base: str, token: str, stop: threading.Event) -> list[int]:
    """add-post then get_my_posts, again and again until `stop`: every status seen."""
    statuses: list[int] = []
    with requests.Session() as session:
        while not stop.is_set():
            added = session.post(base + ADD, json={"text": "still here"}, headers=bearer(token), timeout=TIMEOUT)
            listed = session.get(base + LIST, headers=bearer(token), timeout=TIMEOUT)
            statuses += [added.status_code, listed.status_code]
    return statuses


def test_a_locked_row_is_busy_for_its_account_alone(start_server: StartServer, shared_database: str) -> None:
    server = start_server(shared_database, WEB_CONCURRENCY="2")
    base = server.base
    locked = sign_up(base, "locked@example.com")
    others = [sign_up(base, f"other{n}@example.com")["access_token"] for n in range(OTHER_USERS)]

    engine = create_engine(shared_database)
    stop = threading.Event()
    try:
        with engine.connect() as holder, ThreadPoolExecutor(max_workers=OTHER_USERS) as pool:
            holder.begin()
            account = uuid.UUID(locked["id"])
            holder.execute(select(UserRow.id).where(UserRow.id == account).with_for_update()).one()
            held_since = time.monotonic()
            traffic = [pool.submit(_pairs_until, base, token, stop) for token in others]

            started = time.monotonic()
            response = requests.post(
                base + SIGN_OUT, headers={"refresh-token": locked["refresh_token"], **CLOSE}, timeout=TIMEOUT
            )
            answered_in = time.monotonic() - started
            assert (response.status_code, response.json()) == (503, {"error": "Server busy, retry later"})
            assert response.headers["Retry-After"] == "1"
            assert answered_in < 3.0, answered_in  # the lock wait (2 s), not the read timeout (3 s)

            time.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - held_since)))
            holder.rollback()
            stop.set()
            statuses = Counter(status for future in traffic for status in future.result(timeout=60))
    finally:
        stop.set()
        engine.dispose()
    print(f"locked account: 503 busy in {answered_in:.2f} s; other users meanwhile: {dict(statuses)}")
    assert set(statuses) == {200}, (statuses, server.log_tail())
    assert statuses[200] >= OTHER_USERS * 2
    signed_out = requests.post(
        base + SIGN_OUT, headers={"refresh-token": locked["refresh_token"], **CLOSE}, timeout=TIMEOUT
    )
    assert signed_out.status_code == 200
    assert "database unavailable" not in server.log()
