"""The 1 MiB body limit through gunicorn, for chunked bodies too (the Flask test client cannot send those)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.helpers import (
    LIMIT,
    TIMEOUT,
    WORKERS,
    RawResponse,
    json_body_of_size,
    list_posts,
    raw_post,
    sign_up,
)
from tests.support.api import ADD, bearer
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
FRAMINGS = ["chunked", "content-length"]


@pytest.fixture
def token(live_server: LiveServer) -> str:
    access: str = sign_up(live_server.base, "ada@example.com")["access_token"]
    return access


def _post(server: LiveServer, token: str, body: bytes, framing: str, chunk_size: int = 65_521) -> RawResponse:
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    return raw_post(server.port, ADD, body, headers, chunked=framing == "chunked", chunk_size=chunk_size)


def _assert_too_large(response: RawResponse) -> None:
    assert response.status == 413, (response.status, response.body[:300])
    assert response.headers.get_content_type() == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str)
    assert body["error"]


def _assert_workers_intact(server: LiveServer, token: str) -> None:
    """Every worker still answers and none was killed or restarted."""
    for _ in range(3 * WORKERS):
        response = requests.get(server.base + "/", headers={"Connection": "close"}, timeout=TIMEOUT)
        assert response.status_code == 200
    list_posts(server.base, token)
    log = server.log()
    assert log.count("Booting worker") == WORKERS, server.log_tail()
    assert "WORKER TIMEOUT" not in log
    assert "Traceback" not in log, server.log_tail()


def test_small_chunked_body_is_stored(live_server: LiveServer, token: str) -> None:
    text = "chunked \N{GRINNING FACE} hello"
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    response = _post(live_server, token, body, "chunked", chunk_size=5)  # splits the emoji across chunks
    assert response.status == 200, (response.status, response.body)
    assert response.json() == {"id": response.json()["id"]}
    posts = list_posts(live_server.base, token)
    assert [(post["id"], post["text"]) for post in posts] == [(response.json()["id"], text)]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_body_of_exactly_one_mib_is_stored_byte_for_byte(live_server: LiveServer, token: str, framing: str) -> None:
    body = json_body_of_size(LIMIT)
    text = json.loads(body)["text"]
    assert len(text) == 262_141  # all 4-byte characters: the JSON has no padding
    response = _post(live_server, token, body, framing)
    assert response.status == 200, (response.status, response.body[:300])
    posts = list_posts(live_server.base, token)
    assert len(posts) == 1
    assert posts[0]["id"] == response.json()["id"]
    assert posts[0]["text"].encode() == text.encode()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_body_one_byte_over_one_mib_is_refused_and_not_stored(
    live_server: LiveServer, token: str, framing: str
) -> None:
    response = _post(live_server, token, json_body_of_size(LIMIT + 1), framing)
    _assert_too_large(response)
    assert list_posts(live_server.base, token) == []
    _assert_workers_intact(live_server, token)


def test_large_chunked_body_is_refused_and_the_worker_survives(live_server: LiveServer, token: str) -> None:
    body = json_body_of_size(5 * LIMIT)
    response = _post(live_server, token, body, "chunked")
    _assert_too_large(response)
    assert list_posts(live_server.base, token) == []
    # The next requests work, the refusal killed nothing, and a normal post still goes through.
    _assert_workers_intact(live_server, token)
    ok = requests.post(live_server.base + ADD, json={"text": "after"}, headers=bearer(token), timeout=TIMEOUT)
    assert ok.status_code == 200, ok.text
    assert [post["text"] for post in list_posts(live_server.base, token)] == ["after"]
