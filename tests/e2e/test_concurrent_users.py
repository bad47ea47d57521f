"""200 concurrent mixed requests from 20 users through gunicorn on MariaDB: nothing lost, nothing leaked."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select

from models.tables import PostRow, UserRow
from tests.e2e.helpers import TIMEOUT, WORKERS, sign_up
from tests.support.api import ADD, DELETE, LIST, PASSWORD, SIGN_IN, bearer
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

USERS = 20
# Per user, 10 requests: sign in, 5 adds, 2 deletes, 2 listings; 200 in all.
SCRIPT = ("sign_in", "add", "add", "list", "add", "delete", "add", "list", "delete", "add")
REQUESTS = USERS * len(SCRIPT)


@dataclass
class UserRun:
    """One user's requests, and what they must leave behind."""

    email: str
    token: str = ""
    alive: list[tuple[str, str]] = field(default_factory=list)  # (id, text), newest first
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _request(method: str, url: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, url, timeout=TIMEOUT, **kwargs)


def _play(base: str, run: UserRun, start: threading.Barrier) -> None:
    start.wait(timeout=TIMEOUT)
    added = 0
    for step in SCRIPT:
        if step == "sign_in":
            response = _request("POST", base + SIGN_IN, data={"username": run.email, "password": PASSWORD})
            if response.status_code == 200:
                run.token = response.json()["access_token"]
        elif step == "add":
            text = f"{run.email} post {added}"
            added += 1
            response = _request("POST", base + ADD, json={"text": text}, headers=bearer(run.token))
            if response.status_code == 200:
                run.alive.insert(0, (response.json()["id"], text))
        elif step == "delete":
            victim = run.alive[-1][0]  # the oldest survivor
            response = _request("DELETE", base + DELETE, params={"post_id": victim}, headers=bearer(run.token))
            if response.status_code == 200:
                run.alive.pop()
        else:
            response = _request("GET", base + LIST, headers=bearer(run.token))
            if response.status_code == 200:
                listed = [(post["id"], post["text"]) for post in response.json()]
                # Read-your-writes, and only one's own posts, even mid-run.
                if listed != run.alive:
                    run.problems.append(f"listing {listed} != own posts {run.alive}")
        run.statuses[response.status_code] += 1
        if response.status_code != 200:
            run.problems.append(f"{step}: {response.status_code} {response.text[:200]}")


@pytest.fixture(autouse=True)
def _mariadb_only(backend: str) -> None:
    if backend != "mariadb":
        pytest.skip("the concurrency test runs on the production backend, MariaDB")


def test_concurrent_mixed_requests_lose_nothing_and_leak_nothing(database_url: str, live_server: LiveServer) -> None:
    runs = [UserRun(f"user{i}@example.com") for i in range(USERS)]
    for run in runs:
        sign_up(live_server.base, run.email)
    start = threading.Barrier(USERS)
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        for future in [pool.submit(_play, live_server.base, run, start) for run in runs]:
            future.result()

    assert sum(sum(run.statuses.values()) for run in runs) == REQUESTS
    assert [problem for run in runs for problem in run.problems] == []

    # Afterwards each listing is exactly the user's surviving posts: 3 each, newest first.
    for run in runs:
        assert len(run.alive) == 3
        response = _request("GET", live_server.base + LIST, headers=bearer(run.token))
        assert response.status_code == 200
        assert [(post["id"], post["text"]) for post in response.json()] == run.alive
    # And the database agrees: 60 rows, each owned by the user who wrote it.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(UserRow.email_address, func.count(PostRow.id)).join(PostRow).group_by(UserRow.email_address)
            ).all()
            stored = set(connection.scalars(select(PostRow.text)))
    finally:
        engine.dispose()
    assert dict(rows) == {run.email: 3 for run in runs}
    assert stored == {text for run in runs for _id, text in run.alive}
    log = live_server.log()
    assert log.count("Booting worker") == WORKERS and "Traceback" not in log, live_server.log_tail()
