"""Bodies built to exhaust a worker (huge arrays, deep nesting, wide objects) through real gunicorn."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.helpers import CLOSE, LIMIT, TIMEOUT, WORKERS, RawResponse, list_posts, raw_post, sign_up
from tests.support.api import ADD, PASSWORD, SIGN_IN, SIGN_UP, bearer
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
PATHS = [ADD, SIGN_UP, SIGN_IN]


def _array_of_size(size: int) -> bytes:
    """`[0,0,...,0]` of exactly `size` bytes (odd sizes only): ~`size / 2` elements."""
    assert size % 2 == 1
    body = b"[" + b"0," * ((size - 3) // 2) + b"0]"
    assert len(body) == size
    return body


def _nested_object_of_size(size: int) -> bytes:
    """`{"text": {"a": {"a": ... 1 ...}}}`: as deep as `size` bytes allow."""
    head, tail = b'{"text": ', b"}"
    depth = (size - len(head) - len(tail) - 1) // len(b'{"a":}')
    body = head + b'{"a":' * depth + b"1" + b"}" * depth + tail
    return body + b" " * (size - len(body))


def _wide_object_of_size(size: int) -> bytes:
    """`{"k0":0,"k1":0,...}` with tens of thousands of keys and no `text`."""
    members: list[bytes] = []
    length = 2
    index = 0
    while True:
        member = b'"k%d":0' % index
        if length + len(member) + 1 > size:
            break
        members.append(member)
        length += len(member) + 1
        index += 1
    body = b"{" + b",".join(members) + b"}"
    return body + b" " * (size - len(body))


UNDER_LIMIT = [
    pytest.param(_array_of_size(LIMIT - 1), id="array-just-under-1MiB"),
    pytest.param(b"[" * (LIMIT // 2) + b"]" * (LIMIT // 2), id="nested-arrays-1MiB"),
    pytest.param(_nested_object_of_size(LIMIT), id="nested-objects-1MiB"),
    pytest.param(_wide_object_of_size(LIMIT), id="wide-object-1MiB"),
]


@pytest.fixture(autouse=True)
def _one_backend(backend: str) -> None:
    if backend != "mariadb":
        pytest.skip("bodies are refused before any database access; one backend is enough")


@pytest.fixture
def token(live_server: LiveServer) -> str:
    access: str = sign_up(live_server.base, "ada@example.com")["access_token"]
    return access


def _post(server: LiveServer, path: str, token: str, body: bytes, *, chunked: bool) -> RawResponse:
    return raw_post(server.port, path, body, {**JSON, "Authorization": f"Bearer {token}"}, chunked=chunked)


def _assert_nothing_stored_and_workers_intact(server: LiveServer, token: str) -> None:
    assert list_posts(server.base, token) == []
    for _ in range(3 * WORKERS):
        assert requests.get(server.base + "/", headers=CLOSE, timeout=TIMEOUT).status_code == 200
    # A sign-in (a database read and an argon2 hash) and a post still go through.
    response = requests.post(
        server.base + SIGN_IN,
        json={"email_address": "ada@example.com", "password": PASSWORD},
        headers=CLOSE,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    ok = requests.post(server.base + ADD, json={"text": "after"}, headers=bearer(token), timeout=TIMEOUT)
    assert ok.status_code == 200, ok.text
    log = server.log()
    assert log.count("Booting worker") == WORKERS, server.log_tail()
    assert "WORKER TIMEOUT" not in log and "Traceback" not in log, server.log_tail()


def test_json_arrays_over_one_mebibyte_are_413(live_server: LiveServer, token: str) -> None:
    body = _array_of_size(LIMIT + 1)
    for path in PATHS:
        for chunked in (False, True):
            response = _post(live_server, path, token, body, chunked=chunked)
            assert response.status == 413, (path, chunked, response.status, response.body[:300])
            assert response.headers.get_content_type() == "application/json"
            assert list(response.json()) == ["error"]
    _assert_nothing_stored_and_workers_intact(live_server, token)


def test_hostile_json_bodies_within_the_limit_are_422(live_server: LiveServer, token: str) -> None:
    for param in UNDER_LIMIT:
        [body] = param.values
        assert isinstance(body, bytes) and len(body) <= LIMIT
        for path in PATHS:
            response = _post(live_server, path, token, body, chunked=False)
            assert response.status == 422, (param.id, path, response.status, response.body[:300])
            payload = response.json()
            assert payload["status_code"] == 422 and payload["error"] == "Validation error"
            # The message names the problem briefly; it never echoes the megabyte back.
            assert len(response.body) < 1024, (param.id, path, response.body[:300])
    _assert_nothing_stored_and_workers_intact(live_server, token)
