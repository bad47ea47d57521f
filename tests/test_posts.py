"""Adding, listing and deleting posts, the listing cache and the body limit, on both databases."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import load_settings
from repositories.database import build_engine
from resources import bind, resources, with_engine
from tests.support.api import TEST_SECRET, SignUp, bearer

ADD = "/api/v1/posts/add-post"
LIST = "/api/v1/posts/get_my_posts"
DELETE = "/api/v1/posts/delete_my_post"
LIMIT = 1024 * 1024


def _add(client: FlaskClient, token: str, text: str) -> str:
    response = client.post(ADD, json={"text": text}, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    post_id: str = response.get_json()["id"]
    return post_id


def _texts(client: FlaskClient, token: str) -> list[str]:
    response = client.get(LIST, headers=bearer(token))
    assert response.status_code == 200
    return [post["text"] for post in response.get_json()]


@pytest.fixture
def token(sign_up: SignUp) -> str:
    access: str = sign_up("ada@example.com")["access_token"]
    return access


def test_add_post_returns_its_id_in_one_insert(client: FlaskClient, token: str, statements: list[str]) -> None:
    statements.clear()
    response = client.post(ADD, json={"text": "hello"}, headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["id"]
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert statements == ["INSERT"]


def test_add_post_accepts_the_token_in_the_body(client: FlaskClient, token: str) -> None:
    response = client.post(ADD, json={"text": "from body", "token": token})
    assert response.status_code == 200
    assert _texts(client, token) == ["from body"]


def test_add_post_with_a_bad_body_token_is_401(client: FlaskClient, token: str) -> None:
    response = client.post(ADD, json={"text": "x", "token": token[:-3] + "abc"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_add_post_without_credentials_is_401_before_validation(client: FlaskClient) -> None:
    response = client.post(ADD, json={"text": ""})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Not authenticated"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "body.text: Missing data for required field."),
        ({"text": ""}, "body.text: Shorter than minimum length 1."),
        ({"text": None}, "body.text: Field may not be null."),
        ({"text": 42}, "body.text: Not a valid string."),
        ({"text": ["a"]}, "body.text: Not a valid string."),
    ],
)
def test_add_post_validation(client: FlaskClient, token: str, payload: dict[str, Any], expected: str) -> None:
    response = client.post(ADD, json=payload, headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json() == {"status_code": 422, "error": "Validation error", "extra": [expected]}
    assert _texts(client, token) == []


@pytest.mark.parametrize("body", ["{broken", "[]", '"text"', "12"])
def test_add_post_body_must_be_a_json_object(client: FlaskClient, token: str, body: str) -> None:
    response = client.post(ADD, data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["error"] == "Validation error"


def test_unknown_fields_do_not_reach_storage(client: FlaskClient, token: str, sign_up: SignUp) -> None:
    other = sign_up("bob@example.com")
    forced_id = "5bb9ba60-2e5f-42b1-baf4-a9f74329baa0"
    response = client.post(
        ADD,
        json={"text": "mine", "id": forced_id, "user_id": other["id"], "created_at": "2000-01-01T00:00:00Z"},
        headers=bearer(token),
    )
    assert response.get_json()["id"] != forced_id
    [post] = client.get(LIST, headers=bearer(token)).get_json()
    assert post["text"] == "mine"
    assert not post["created_at"].startswith("2000")
    assert _texts(client, other["access_token"]) == []


def test_listing_shape_and_newest_first_order(client: FlaskClient, token: str) -> None:
    ids = [_add(client, token, f"post {n}") for n in range(30)]  # many within the same second
    response = client.get(LIST, headers=bearer(token))
    posts = response.get_json()
    assert response.headers["Content-Type"] == "application/json"
    assert [post["id"] for post in posts] == list(reversed(ids))
    for post in posts:
        assert set(post) == {"id", "text", "created_at"}
        assert datetime.fromisoformat(post["created_at"]).utcoffset() is not None
    stamps = [datetime.fromisoformat(post["created_at"]) for post in posts]
    assert stamps == sorted(stamps, reverse=True)


def test_listing_is_cached_and_reflects_own_writes(client: FlaskClient, token: str, statements: list[str]) -> None:
    first = _add(client, token, "one")
    statements.clear()
    assert _texts(client, token) == ["one"]
    assert statements == ["SELECT"]  # miss: one query
    statements.clear()
    assert _texts(client, token) == ["one"]
    assert statements == []  # hit: no database at all
    _add(client, token, "two")
    assert _texts(client, token) == ["two", "one"]  # add invalidated
    statements.clear()
    assert client.delete(DELETE, query_string={"post_id": first}, headers=bearer(token)).status_code == 200
    assert statements == ["DELETE"]
    assert _texts(client, token) == ["two"]  # delete invalidated


def test_one_users_listing_is_never_served_to_another(client: FlaskClient, token: str, sign_up: SignUp) -> None:
    other = sign_up("bob@example.com")["access_token"]
    _add(client, token, "ada's secret")
    assert _texts(client, token) == ["ada's secret"]  # cached for ada
    assert _texts(client, other) == []
    _add(client, other, "bob's note")
    assert _texts(client, other) == ["bob's note"]
    assert _texts(client, token) == ["ada's secret"]


def test_delete_own_post(client: FlaskClient, token: str) -> None:
    post_id = _add(client, token, "bye")
    response = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"status": "post deleted successfully"}
    again = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))
    assert again.status_code == 404
    assert again.get_json() == {"error": "Post not found"}


def test_cannot_delete_someone_elses_post(client: FlaskClient, token: str, sign_up: SignUp) -> None:
    other = sign_up("bob@example.com")["access_token"]
    post_id = _add(client, token, "ada's")
    response = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(other))
    assert response.status_code == 404
    assert response.get_json() == {"error": "Post not found"}
    assert _texts(client, token) == ["ada's"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, "query.post_id: Missing data for required field."),
        ({"post_id": "42"}, "query.post_id: Not a valid UUID."),
        ({"post_id": "' OR 1=1 --"}, "query.post_id: Not a valid UUID."),
    ],
)
def test_delete_validation(client: FlaskClient, token: str, query: dict[str, str], expected: str) -> None:
    _add(client, token, "kept")
    response = client.delete(DELETE, query_string=query, headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["extra"] == [expected]
    assert _texts(client, token) == ["kept"]


def test_delete_without_token_is_401(client: FlaskClient) -> None:
    response = client.delete(DELETE, query_string={"post_id": str(uuid.uuid4())})
    assert response.status_code == 401


def _body_of_size(size: int) -> tuple[bytes, str]:
    """A JSON object body of exactly `size` bytes whose text is mostly 4-byte UTF-8 characters."""
    frame = len(b'{"text": ""}')
    room = size - frame
    text = "\U0001f600" * (room // 4) + "a" * (room % 4)
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    assert len(body) == size
    return body, text


def test_a_body_of_exactly_one_mebibyte_round_trips_byte_for_byte(client: FlaskClient, token: str) -> None:
    body, text = _body_of_size(LIMIT)
    response = client.post(ADD, data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 200
    listed = client.get(LIST, headers=bearer(token))
    [post] = json.loads(listed.get_data())
    assert post["text"].encode() == text.encode()


def test_a_body_over_one_mebibyte_is_413_and_not_stored(client: FlaskClient, token: str) -> None:
    body, _text = _body_of_size(LIMIT + 1)
    response = client.post(ADD, data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert "error" in response.get_json()
    assert _texts(client, token) == []


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE posts; --",
        "\x00\x01\x1f control",
        "<script>alert(1)</script>",
        "tab\tnew\nline",
        "é\u0301 ZWJ \u200d",
    ],
)
def test_hostile_text_is_stored_literally(client: FlaskClient, token: str, text: str) -> None:
    _add(client, token, text)
    assert _texts(client, token) == [text]


def test_listings_over_the_entry_bound_are_not_cached(app: Flask, token: str, statements: list[str]) -> None:
    client = app.test_client()
    _add(client, token, "x" * (600 * 1024))  # encoded listing above the 512 KiB default bound
    statements.clear()
    _texts(client, token)
    _texts(client, token)
    # Each listing: the short read finds a long post (its text not fetched), then the streamed read.
    assert statements == ["SELECT", "SELECT", "SELECT", "SELECT"]


def test_cached_listing_is_served_while_the_database_is_down(app: Flask, client: FlaskClient, token: str) -> None:
    _add(client, token, "survives")
    assert _texts(client, token) == ["survives"]  # now cached
    unreachable = load_settings(
        {}, app_env="testing", database_url="mysql+pymysql://root@127.0.0.1:1/none", jwt_secret_key=TEST_SECRET
    )
    working = resources(app)
    bind(app, with_engine(working, build_engine(unreachable)))
    try:
        assert _texts(client, token) == ["survives"]
        response = client.post(ADD, json={"text": "lost?"}, headers=bearer(token))
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "error" in response.get_json()
        assert _texts(client, token) == ["survives"]  # the failed write changed nothing: still served
    finally:
        bind(app, working)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="deeply-nested-array"),
        pytest.param('{"text": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}", id="deeply-nested-object"),
        pytest.param('{"text": "\\ud800 lone surrogate"}', id="lone-surrogate"),
        pytest.param(b'{"text": "\xff\xfe not utf-8"}', id="invalid-utf-8"),
        pytest.param('{"text": NaN}', id="nan"),
    ],
)
@pytest.mark.parametrize("path", [ADD, "/api/v1/auth/sign_up", "/api/v1/auth/sign_in"])
def test_json_that_cannot_be_stored_is_422_not_500(client: FlaskClient, token: str, path: str, body: str) -> None:
    response = client.post(path, data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["extra"] == ["body: Invalid JSON body."]
    assert _texts(client, token) == []


def test_a_body_token_in_unparseable_json_is_not_read(client: FlaskClient, token: str) -> None:
    body = '{"token": "' + token + '", "text": "\\ud800"}'
    response = client.post(ADD, data=body, content_type="application/json")
    assert response.status_code == 401
