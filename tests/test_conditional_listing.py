"""Conditional listing (docs/api.md, "Conditional listing"): ETag, If-None-Match and 304 with no query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from app import create_app
from config import load_settings
from extensions import cache
from resources import resources
from tests.support.api import (
    ADA,
    ADD,
    DELETE,
    LIST,
    PASSWORD,
    SIGN_UP,
    TEST_SECRET,
    Api,
    MakeClient,
    SignUp,
    bearer,
    id_and_token,
)
from tests.support.posts import insert_posts
from tests.support.redis import RedisServer


def _get(client: FlaskClient, token: str, if_none_match: str | None = None, **query: Any) -> Any:
    headers = None if if_none_match is None else {"If-None-Match": if_none_match}
    return Api(client).listing(token, headers, **query)


def _etag(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    etag: str = response.headers["ETag"]
    assert etag.startswith('W/"') and etag.endswith('"'), etag
    return etag


def _assert_not_modified(response: Any, etag: str) -> None:
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Vary"] == "Authorization"


def test_a_matching_if_none_match_gets_304_with_no_body_and_no_query(
    client: FlaskClient, sign_up: SignUp, statements: list[str]
) -> None:
    _, token = id_and_token(sign_up)
    Api(client).add_post(token, "hello")
    etag = _etag(_get(client, token))
    statements.clear()
    _assert_not_modified(_get(client, token, etag), etag)
    assert statements == []
    head = client.head(LIST, headers={**bearer(token), "If-None-Match": etag})
    assert head.status_code == 304


def test_a_listing_too_large_to_cache_still_gets_its_304_with_no_query(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, ["x" * 100_000] * 8)  # past the cache's 512 KiB: streamed, not cached
    response = _get(client, token)
    assert "Content-Length" not in response.headers
    etag = _etag(response)
    statements.clear()
    _assert_not_modified(_get(client, token, etag), etag)
    assert statements == []  # the version stamp alone decides


def test_the_etag_changes_after_add_post_and_after_delete(client: FlaskClient, sign_up: SignUp) -> None:
    _, token = id_and_token(sign_up)
    first = _etag(_get(client, token))
    post_id = Api(client).add_post(token, "new")
    response = _get(client, token, first)  # stale: the whole new listing
    second = _etag(response)
    assert second != first and [post["text"] for post in response.get_json()] == ["new"]
    assert client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token)).status_code == 200
    response = _get(client, token, second)
    third = _etag(response)
    assert third not in (first, second) and response.get_json() == []
    _assert_not_modified(_get(client, token, third), third)


def test_users_never_share_an_etag(client: FlaskClient, sign_up: SignUp) -> None:
    _, ada = id_and_token(sign_up)
    _, bob = id_and_token(sign_up, "bob@example.com")
    empty = (_etag(_get(client, ada)), _etag(_get(client, bob)))
    assert empty[0] != empty[1]  # the same body, `[]`
    assert _get(client, bob, empty[0]).status_code == 200
    Api(client).add_post(ada, "same")
    Api(client).add_post(bob, "same")
    ada_tag = _etag(_get(client, ada))
    assert ada_tag != _etag(_get(client, bob))
    assert _get(client, bob, ada_tag).status_code == 200


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("{strong}", 304),
        ("{weak}", 304),
        ('"elsewhere", {weak}', 304),
        ('W/"elsewhere",{strong}', 304),
        ("*", 304),
        ('"elsewhere"', 200),
        ('W/"elsewhere"', 200),
        ("not even quoted", 200),
        ("", 200),
    ],
)
def test_if_none_match_compares_weakly_and_accepts_lists_and_star(
    client: FlaskClient, sign_up: SignUp, header: str, status: int
) -> None:
    _, token = id_and_token(sign_up)
    Api(client).add_post(token, "hello")
    weak = _etag(_get(client, token))
    response = _get(client, token, header.format(weak=weak, strong=weak.removeprefix("W/")))
    assert response.status_code == status
    assert response.headers["ETag"] == weak
    assert (response.data == b"") == (status == 304)


def test_each_page_has_its_own_etag_and_its_own_304(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    ids = insert_posts(engine, user_id, [f"p{n}" for n in range(5)])
    whole = _etag(_get(client, token))
    first = _etag(_get(client, token, limit=2))
    second = _etag(_get(client, token, limit=2, before=ids[3]))
    other_size = _etag(_get(client, token, limit=3))
    assert len({whole, first, second, other_size}) == 4
    statements.clear()
    _assert_not_modified(_get(client, token, first, limit=2), first)
    _assert_not_modified(_get(client, token, second, limit=2, before=ids[3]), second)
    assert statements == []
    assert _get(client, token, first, limit=2, before=ids[3]).status_code == 200
    Api(client).add_post(token, "newer")
    assert _etag(_get(client, token, first, limit=2)) != first


def test_star_matches_any_listing_but_not_a_page_that_does_not_exist(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    ids = insert_posts(engine, user_id, ["a", "b"])
    etag = _etag(_get(client, token))
    statements.clear()
    _assert_not_modified(_get(client, token, "*"), etag)
    assert statements == []
    page = _get(client, token, limit=1, before=ids[1])
    _assert_not_modified(_get(client, token, "*", limit=1, before=ids[1]), _etag(page))
    # Preconditions do not apply to what would not be a 2xx (RFC 9110 13.2.1).
    response = _get(client, token, "*", limit=1, before="5bb9ba60-2e5f-42b1-baf4-a9f74329baa0")
    assert (response.status_code, response.get_json()) == (404, {"error": "Post not found"})


@pytest.fixture
def uncached_app(app: Flask, schema_url: str, redis_server: RedisServer) -> Iterator[Flask]:
    """A second app on the same database (emptied with `app`'s) whose listing cache, Redis, is down."""
    settings = load_settings(
        {},
        app_env="testing",
        database_url=schema_url,
        jwt_secret_key=TEST_SECRET,
        redis_url=redis_server.url,
        cache_retry_seconds=60,
        redis_timeout_seconds=0.5,
        # Flask-Limiter is one object per process: with limits on, it would count in this Redis,
        # find it stopped, and stay on its memory fallback into later tests' apps (losing counts
        # when it notices the storage is back), which broke the lockout tests that ran next.
        rate_limits_enabled=False,
    )
    other = create_app(settings)
    redis_server.stop()
    yield other
    resources(other).engine.dispose()


def test_while_the_cache_is_unavailable_the_etag_comes_from_the_body(
    client: FlaskClient, uncached_app: Flask, sign_up: SignUp, engine: Engine
) -> None:
    user_id, token = id_and_token(sign_up)
    Api(client).add_post(token, "one")
    cached = _etag(_get(client, token))
    uncached = uncached_app.test_client()
    etag = _etag(_get(uncached, token))
    assert etag != cached  # not the version stamp's: there is none
    assert _etag(_get(uncached, token)) == etag  # the same body, the same tag
    sent: list[str] = []
    event.listen(resources(uncached_app).engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    _assert_not_modified(_get(uncached, token, etag), etag)
    # Known only once the body is built: the listing's SELECT runs (beside the token check's own,
    # which reads the user's session stamp from the database while the cache is down).
    assert len([statement for statement in sent if "FROM posts" in statement]) == 1
    Api(uncached).add_post(token, "two")
    assert _etag(_get(uncached, token, etag)) != etag
    # A listing too large to buffer has no tag then: it would need the whole body first.
    insert_posts(engine, user_id, ["x" * 100_000] * 8)
    response = _get(uncached, token)
    assert response.status_code == 200 and "ETag" not in response.headers
    assert len(response.get_json()) == 10


def test_tags_stay_stable_after_the_filesystem_caches_entries_expire(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(cache_backend="filesystem", cache_dir=str(tmp_path / "cache"))
    signed_up = client.post(SIGN_UP, json={"email_address": ADA, "password": PASSWORD}).get_json()
    user_id, headers = signed_up["id"], bearer(signed_up["access_token"])
    assert client.post(ADD, json={"text": "hello"}, headers=headers).status_code == 200
    assert client.get(LIST, headers=headers).status_code == 200
    backend = client.application.extensions["cache"][cache]
    backend.set(f"v:{user_id}", "long-expired", timeout=-10)  # what a quiet CACHE_TIMEOUT_SECONDS leaves
    first = client.get(LIST, headers=headers)
    second = client.get(LIST, headers=headers)
    assert first.headers["ETag"] == second.headers["ETag"]
    again = client.get(LIST, headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
