"""Through a real gunicorn: every auth limit counts each attempt once, whichever worker serves it.

The default deployment counts in the host store that every worker of the host shares; with
REDIS_URL, in Redis, and in the host store while Redis is down (per host, never per process).
Each attempt comes on a fresh connection, and each worker holds one connection at a time, so
the attempts spread over the workers as an attacker's would.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, access_log, sign_up, wait_for_every_worker
from tests.support.api import PASSWORD, SIGN_IN
from tests.support.gunicorn import LiveServer
from tests.support.redis import RedisServer

pytestmark = pytest.mark.e2e

WRONG = "not-the-password-42"
LIMIT = 5  # the default "5 per 15 minutes"
ATTEMPTS = 16


def _sign_in(base: str, email: str, password: str, cookies: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        base + SIGN_IN,
        json={"email_address": email, "password": password},
        headers=CLOSE,
        cookies=cookies,
        timeout=TIMEOUT,
    )


def _start(start_server: StartServer, database_url: str, workers: int, **env: str) -> LiveServer:
    server = start_server(database_url, WEB_CONCURRENCY=str(workers), GUNICORN_CMD_ARGS="--worker-connections 1", **env)
    wait_for_every_worker(server, workers)
    return server


def _guesses(base: str, email: str, cookies: dict[str, str] | None = None) -> list[int]:
    """ATTEMPTS wrong passwords, four at a time, each on a fresh connection: their statuses."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: _sign_in(base, email, WRONG, cookies).status_code, range(ATTEMPTS)))


def _served_by_several_workers(server: LiveServer) -> bool:
    return len(Counter(pid for pid, _, path, _ in access_log(server.log()) if path == SIGN_IN)) > 1


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("store", ["host", "redis"])
def test_failed_sign_ins_are_counted_once_across_workers(
    start_server: StartServer, database_url: str, request: pytest.FixtureRequest, workers: int, store: str
) -> None:
    env = {"REDIS_URL": request.getfixturevalue("redis_server").url} if store == "redis" else {}
    server = _start(start_server, database_url, workers, **env)
    sign_up(server.base, "ada@example.com")
    statuses = _guesses(server.base, "ada@example.com")
    assert Counter(statuses) == {401: LIMIT, 429: ATTEMPTS - LIMIT}, server.log_tail()
    assert _served_by_several_workers(server)
    assert _sign_in(server.base, "ada@example.com", PASSWORD).status_code == 429  # locked for strangers


def test_while_redis_is_down_the_host_counts_for_every_worker(
    start_server: StartServer, database_url: str, redis_server: RedisServer
) -> None:
    server = _start(start_server, database_url, 2, REDIS_URL=redis_server.url, REDIS_TIMEOUT_SECONDS="0.2")
    sign_up(server.base, "ada@example.com")
    redis_server.stop()
    statuses = _guesses(server.base, "ada@example.com")
    assert Counter(statuses) == {401: LIMIT, 429: ATTEMPTS - LIMIT}, server.log_tail()
    assert _served_by_several_workers(server)


def test_a_trusted_devices_own_limit_holds_across_workers(start_server: StartServer, database_url: str) -> None:
    server = _start(start_server, database_url, 4)
    sign_up(server.base, "ada@example.com")
    signed_in = _sign_in(server.base, "ada@example.com", PASSWORD)
    assert signed_in.status_code == 200
    device = {"device": signed_in.cookies["device"]}
    statuses = _guesses(server.base, "ada@example.com", device)
    assert Counter(statuses) == {401: LIMIT, 429: ATTEMPTS - LIMIT}, server.log_tail()


def test_the_per_address_limit_holds_across_workers(start_server: StartServer, database_url: str) -> None:
    server = _start(start_server, database_url, 4, RATE_LIMIT_AUTH_PER_ADDRESS="6 per minute")
    with ThreadPoolExecutor(max_workers=4) as pool:  # a different account each time: only the address repeats
        statuses = list(
            pool.map(lambda n: _sign_in(server.base, f"nobody{n}@example.com", WRONG).status_code, range(12))
        )
    assert Counter(statuses) == {401: 6, 429: 6}, server.log_tail()
    assert _served_by_several_workers(server)
