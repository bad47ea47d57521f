"""A MariaDB outage under a running gunicorn: cached reads survive, writes get 503 fast, recovery is automatic."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import LiveServer, StartServer
from tests.e2e.helpers import (
    ADD,
    CLOSE,
    PASSWORD,
    SIGN_IN,
    TIMEOUT,
    add_post,
    bearer,
    list_posts,
    sign_up,
)
from tests.support.mariadb import MariaDBServer, mariadbd_path

pytestmark = pytest.mark.e2e

# A hang would be a bug: the database timeouts are meant to answer well inside gunicorn's 30 s.
ANSWER_BOUND_SECONDS = 10.0
RECOVERY_SECONDS = 15.0
TRIES = 6  # enough requests to reach every worker


@pytest.fixture
def own_mariadb(backend: str, tmp_path: Path) -> Iterator[MariaDBServer]:
    """A MariaDB server of this test alone, since the test stops it."""
    if backend != "mariadb":
        pytest.skip("database outage is simulated by stopping a MariaDB server; SQLite cannot go down")
    if mariadbd_path() is None:
        if os.environ.get("CI"):
            pytest.fail("mariadbd is not installed; .ci/run must install mariadb-server")
        pytest.skip("mariadbd is not installed (apt-get install mariadb-server); MariaDB tests skipped")
    server = MariaDBServer(tmp_path / "outage-mariadb")
    server.start()
    yield server
    server.close()


def _timed_post(url: str, **kwargs: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(url, timeout=60, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def _assert_unavailable(
    response: requests.Response, elapsed: float, live: LiveServer, bound: float = ANSWER_BOUND_SECONDS
) -> None:
    assert response.status_code == 503, (response.status_code, response.text, live.log_tail())
    assert response.headers["Content-Type"] == "application/json"
    assert list(response.json()) == ["error"]
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed < bound, f"503 took {elapsed:.1f}s"


def _add_post_once_recovered(live: LiveServer, token: str, text: str) -> str:
    """Retry add-post until the database is back; only 503s may come before the 200."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    seen: list[int] = []
    while True:
        response = requests.post(live.base + ADD, json={"text": text}, headers=bearer(token), timeout=TIMEOUT)
        seen.append(response.status_code)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 200, (seen, response.text, live.log_tail())
    assert set(seen) <= {200, 503}, seen
    post_id: str = response.json()["id"]
    return post_id


def test_outage_serves_cached_listing_refuses_writes_and_recovers(
    own_mariadb: MariaDBServer, start_server: StartServer
) -> None:
    live = start_server(own_mariadb.create_database("posts_outage"))
    base = live.base
    token = sign_up(base, "ada@example.com")["access_token"]
    first = add_post(base, token, "before the outage")
    assert [post["id"] for post in list_posts(base, token)] == [first]  # now cached

    own_mariadb.stop()

    # Reads come from the shared cache, on whichever worker answers.
    for _ in range(TRIES):
        started = time.monotonic()
        posts = list_posts(base, token)
        assert time.monotonic() - started < ANSWER_BOUND_SECONDS
        assert [(post["id"], post["text"]) for post in posts] == [(first, "before the outage")]

    # Writes and sign-in need the database: a prompt 503 with Retry-After, never a hang or a 500.
    for attempt in range(TRIES):
        response, elapsed = _timed_post(base + ADD, json={"text": f"lost {attempt}"}, headers=bearer(token))
        _assert_unavailable(response, elapsed, live)
    for _ in range(2):
        response, elapsed = _timed_post(
            base + SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}, headers=CLOSE
        )
        _assert_unavailable(response, elapsed, live)

    own_mariadb.start()  # same port and data directory; gunicorn is not restarted

    after = _add_post_once_recovered(live, token, "after")

    # Every worker recovers, and nothing written during the outage was stored.
    for _ in range(TRIES):
        posts = list_posts(base, token)
        assert [(post["id"], post["text"]) for post in posts] == [(after, "after"), (first, "before the outage")]
    response = requests.post(
        base + SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}, headers=CLOSE, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text

    log = live.log()
    assert "WORKER TIMEOUT" not in log, live.log_tail()
    assert log.count("Booting worker") == 3, live.log_tail()
    assert "Internal server error" not in log and "unhandled error" not in log, live.log_tail()


# Well below gunicorn.conf.py's 30 s worker timeout. With the default DB_READ_TIMEOUT_SECONDS=5 a
# frozen server costs up to ~10 s: the pre-ping of a pooled connection times out (5 s), then the
# reconnect's handshake waits out the read timeout again (PyMySQL applies connect_timeout only to
# the TCP connect, which the kernel completes for a stopped process).
FROZEN_BOUND_SECONDS = 15.0
READYZ_BOUND_SECONDS = 5.0


def test_frozen_database_answers_503_before_gunicorn_kills_the_worker(
    own_mariadb: MariaDBServer, start_server: StartServer
) -> None:
    live = start_server(own_mariadb.create_database("posts_frozen"))
    base = live.base
    token = sign_up(base, "ada@example.com")["access_token"]
    first = add_post(base, token, "before the freeze")
    # SIGSTOP: the kernel still accepts TCP connections, but the server never answers,
    # so only the driver's connect/read timeouts can end the request.
    pid = int(own_mariadb.pid_file.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        # The readiness probe has its own short timeouts (HEALTH_TIMEOUT_SECONDS=2): well inside 5 s.
        started = time.monotonic()
        ready = requests.get(base + "/readyz", headers=CLOSE, timeout=TIMEOUT)
        ready_elapsed = time.monotonic() - started
        assert ready.status_code == 503, (ready.status_code, ready.text)
        assert ready.json() == {"error": "Service not ready", "checks": {"database": "unavailable"}}
        assert int(ready.headers["Retry-After"]) > 0
        assert ready_elapsed < READYZ_BOUND_SECONDS, f"/readyz took {ready_elapsed:.1f}s"
        response, elapsed = _timed_post(base + ADD, json={"text": "frozen"}, headers=bearer(token))
        _assert_unavailable(response, elapsed, live, bound=FROZEN_BOUND_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)

    thawed = _add_post_once_recovered(live, token, "thawed")
    assert requests.get(base + "/readyz", headers=CLOSE, timeout=TIMEOUT).status_code == 200
    texts = [(post["id"], post["text"]) for post in list_posts(base, token)]
    assert texts == [(thawed, "thawed"), (first, "before the freeze")]
    assert "WORKER TIMEOUT" not in live.log(), live.log_tail()
