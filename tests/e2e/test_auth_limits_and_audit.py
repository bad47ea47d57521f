"""Through a real gunicorn (3 workers): the failed sign-in limit is shared through Redis, and the
audit log in the server's own output covers every event without a password, token or post text."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.helpers import (
    CLOSE,
    TIMEOUT,
    WORKERS,
    StartServer,
    access_log,
    insert_unreadable_post,
    log_records,
    sign_up,
)
from tests.support.api import ADD, LIST, PASSWORD, REFRESH, SIGN_IN, SIGN_OUT, bearer
from tests.support.gunicorn import LiveServer
from tests.support.redis import RedisServer

pytestmark = pytest.mark.e2e

WRONG = "not-the-password-42"
POST_TEXT = "e2e private diary \N{GRINNING FACE} 91c2"
WORKER_BOOT_SECONDS = 30.0


def _sign_in(base: str, email: str, password: str, **headers: str) -> requests.Response:
    return requests.post(
        base + SIGN_IN,
        json={"email_address": email, "password": password},
        headers={**CLOSE, **headers},
        timeout=TIMEOUT,
    )


def _wait_for_every_worker(server: LiveServer) -> None:
    """Until each worker has served a request: the first one up would otherwise take them all."""
    deadline = time.monotonic() + WORKER_BOOT_SECONDS
    while len({pid for pid, *_ in access_log(server.log())}) < WORKERS:
        assert time.monotonic() < deadline, server.log_tail()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(lambda _: requests.get(server.base + "/", headers=CLOSE, timeout=TIMEOUT), range(WORKERS)))


def test_failed_sign_in_limit_holds_across_workers_with_redis(
    start_server: StartServer, database_url: str, redis_server: RedisServer
) -> None:
    # One connection per worker at a time: concurrent attempts cannot all land on one worker
    # (left alone, one idle worker may accept every connection of a short burst).
    server = start_server(database_url, REDIS_URL=redis_server.url, GUNICORN_CMD_ARGS="--worker-connections 1")
    base = server.base
    _wait_for_every_worker(server)
    sign_up(base, "ada@example.com")
    with ThreadPoolExecutor(max_workers=5) as pool:
        failures = list(pool.map(lambda _: _sign_in(base, "ada@example.com", WRONG).status_code, range(5)))
    assert failures == [401] * 5
    with ThreadPoolExecutor(max_workers=4) as pool:
        refused = list(pool.map(lambda _: _sign_in(base, "ada@example.com", PASSWORD), range(12)))
    assert [response.status_code for response in refused] == [429] * 12, server.log_tail()
    for response in refused:
        assert response.json() == {"error": "Too many attempts, try again later"}
        assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60

    # Proof that the count is shared: some worker refused the right password although it had
    # seen fewer than 5 failures itself (with per-worker counters it would have said 200).
    sign_ins = [(pid, status) for pid, method, path, status in access_log(server.log()) if path == SIGN_IN]
    own_failures = Counter(pid for pid, status in sign_ins if status == 401)
    assert any(status == 429 and own_failures[pid] < 5 for pid, status in sign_ins), sign_ins
    # Another account is untouched.
    sign_up(base, "bob@example.com")
    assert _sign_in(base, "bob@example.com", PASSWORD).status_code == 200


def test_audit_log_of_a_real_run_has_every_event_and_no_secrets(
    start_server: StartServer, database_url: str, redis_server: RedisServer
) -> None:
    server = start_server(database_url, REDIS_URL=redis_server.url, RATE_LIMIT_SIGN_IN_FAILURES="1 per 15 minutes")
    base = server.base
    sent: dict[str, tuple[str, int]] = {}  # request id -> (expected event, status)

    def call(event: str, status: int, method: str, path: str, **kwargs: Any) -> requests.Response:
        request_id = f"e2e-{uuid.uuid4().hex[:12]}"
        headers = {**CLOSE, "X-Request-ID": request_id, **kwargs.pop("headers", {})}
        response = requests.request(method, base + path, headers=headers, timeout=TIMEOUT, **kwargs)
        assert response.status_code == status, (path, response.status_code, response.text, server.log_tail())
        assert response.headers["X-Request-ID"] == request_id
        if event:
            sent[request_id] = (event, status)
        return response

    email = "grace.hopper@example.com"
    user = call("sign_up", 200, "POST", "/api/v1/auth/sign_up", json={"email_address": email, "password": PASSWORD})
    tokens = user.json()
    signed_in = call("sign_in", 200, "POST", SIGN_IN, data={"username": email, "password": PASSWORD}).json()
    call("sign_in_failed", 401, "POST", SIGN_IN, json={"email_address": email, "password": WRONG})
    call("sign_in_failed", 429, "POST", SIGN_IN, json={"email_address": email, "password": PASSWORD})
    call("refresh", 200, "GET", REFRESH, headers={"refresh-token": tokens["refresh_token"]})
    call("", 200, "POST", ADD, json={"text": POST_TEXT}, headers=bearer(signed_in["access_token"]))
    call("", 200, "GET", LIST, headers=bearer(signed_in["access_token"]))
    forged = signed_in["access_token"][:-4] + "AAAA"
    call("authorization_failed", 401, "GET", LIST, headers=bearer(forged))
    # An unexpected error: a corrupted row breaks reading the listing.
    insert_unreadable_post(database_url, tokens["id"])
    call("", 200, "POST", ADD, json={"text": POST_TEXT}, headers=bearer(signed_in["access_token"]))  # re-read
    failed = call("server_error", 500, "GET", LIST, headers=bearer(signed_in["access_token"]))
    assert failed.json() == {"error": "Internal server error"}
    call("sign_out", 200, "POST", SIGN_OUT, headers={"refresh-token": signed_in["refresh_token"]})
    call("refresh_failed", 401, "GET", REFRESH, headers={"refresh-token": tokens["refresh_token"]})

    log = server.log()
    records = {record["request_id"]: record for record in log_records(log) if record["logger"] == "posts.audit"}
    assert {rid: (records[rid]["event"], records[rid]["status"]) for rid in sent if rid in records} == sent
    assert all(set(records[rid]) >= {"ts", "event", "request_id", "path", "status", "client"} for rid in sent)
    # The 500's traceback in the log names the request too, so the two can be joined.
    error_id = next(rid for rid, (event, _) in sent.items() if event == "server_error")
    assert f"unhandled error (request {error_id})" in log

    secrets = [PASSWORD, WRONG, POST_TEXT, "private diary", email]
    for token in (tokens["access_token"], tokens["refresh_token"], signed_in["access_token"], forged):
        secrets += [token, *token.split(".")[1:]]
    assert [secret for secret in secrets if secret in log] == []
