"""Through a real gunicorn (3 workers, one connection each) sharing its limiter counters in Redis:
a stranger's failures lock the account for cookie-less clients but not the owner's device, and a
device's own failure limit holds across workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, access_log, sign_up, wait_for_every_worker
from tests.support.api import PASSWORD, SIGN_IN
from tests.support.redis import RedisServer

pytestmark = pytest.mark.e2e

WRONG = "not-the-password-42"
EMAIL = "ada@example.com"
LIMIT = 5  # the default for the account and for a device


def _sign_in(base: str, password: str, device: str | None = None) -> requests.Response:
    cookie = {"Cookie": f"device={device}"} if device else {}
    return requests.post(
        base + SIGN_IN,
        json={"email_address": EMAIL, "password": password},
        headers={**CLOSE, **cookie},
        timeout=TIMEOUT,
    )


def _in_parallel(count: int, attempt: Callable[[], requests.Response]) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: attempt(), range(count)))


def test_device_cookies_hold_across_workers_with_redis(
    start_server: StartServer, database_url: str, redis_server: RedisServer
) -> None:
    server = start_server(
        database_url, REDIS_URL=redis_server.url, GUNICORN_THREADS="1", GUNICORN_CMD_ARGS="--worker-connections 1"
    )
    base = server.base
    wait_for_every_worker(server)
    sign_up(base, EMAIL)

    # A browser-like cookie jar keeps the cookie for its path and sends it back by itself.
    browser = requests.Session()
    signed_in = browser.post(base + SIGN_IN, json={"email_address": EMAIL, "password": PASSWORD}, timeout=TIMEOUT)
    assert signed_in.status_code == 200
    set_cookie = signed_in.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    assert attributes == {"expires", "max-age", "httponly", "samesite", "path"}, set_cookie
    assert "SameSite=Strict" in set_cookie and "Path=/api/v1/auth" in set_cookie
    other_device = _sign_in(base, PASSWORD).cookies["device"]
    device = _sign_in(base, PASSWORD).cookies["device"]

    # A stranger without the cookie locks the account for every cookie-less client ...
    assert [r.status_code for r in _in_parallel(LIMIT, lambda: _sign_in(base, WRONG))] == [401] * LIMIT
    assert [r.status_code for r in _in_parallel(6, lambda: _sign_in(base, PASSWORD))] == [429] * 6
    # ... but not the owner's devices, on whichever worker they land.
    assert [r.status_code for r in _in_parallel(6, lambda: _sign_in(base, PASSWORD, device))] == [200] * 6
    again = browser.post(base + SIGN_IN, json={"email_address": EMAIL, "password": PASSWORD}, timeout=TIMEOUT)
    assert again.status_code == 200

    # One device's own failures lock that device, counted across the workers in Redis.
    before = len(access_log(server.log()))
    failures = _in_parallel(LIMIT, lambda: _sign_in(base, WRONG, device))
    assert [r.status_code for r in failures] == [401] * LIMIT
    refused = _in_parallel(8, lambda: _sign_in(base, PASSWORD, device))
    assert [r.status_code for r in refused] == [429] * 8, server.log_tail()
    for response in refused:
        assert response.json() == {"error": "Too many attempts, try again later"}
        assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60
        assert "Set-Cookie" not in response.headers
    # Shared, not per worker: some worker refused the right password having seen fewer than
    # LIMIT of the device's failures itself (per-process counters would have said 200).
    device_phase = [(pid, status) for pid, _, path, status in access_log(server.log())[before:] if path == SIGN_IN]
    own_failures = Counter(pid for pid, status in device_phase if status == 401)
    assert any(status == 429 and own_failures[pid] < LIMIT for pid, status in device_phase), device_phase

    # The owner's other device is untouched by both locks.
    assert _sign_in(base, PASSWORD, other_device).status_code == 200
    assert _sign_in(base, PASSWORD).status_code == 429
