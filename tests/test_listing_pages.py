"""Pages of get_my_posts (`limit`, `before`, `Link: rel="next"`), on both databases."""

from __future__ import annotations

import re
import uuid

import pytest
from flask.testing import FlaskClient

from tests.support.api import SignUp, bearer

ADD = "/api/v1/posts/add-post"
LIST = "/api/v1/posts/get_my_posts"
DELETE = "/api/v1/posts/delete_my_post"
_NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def _add(client: FlaskClient, token: str, text: str) -> str:
    response = client.post(ADD, json={"text": text}, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    post_id: str = response.get_json()["id"]
    return post_id


@pytest.fixture
def token(sign_up: SignUp) -> str:
    access: str = sign_up("ada@example.com")["access_token"]
    return access


def _follow(client: FlaskClient, token: str, url: str) -> tuple[list[str], int]:
    """Every post id reached by following rel="next" from `url`, and how many pages that took."""
    ids: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        pages += 1
        assert pages <= 20, "rel=next never ended"
        response = client.get(next_url, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        ids += [post["id"] for post in response.get_json()]
        link = response.headers.get("Link")
        next_url = None
        if link is not None:
            match = _NEXT.match(link)
            assert match, link
            next_url = match[1]
    return ids, pages


def test_pages_walk_the_whole_listing_newest_first_and_the_last_has_no_link(client: FlaskClient, token: str) -> None:
    added = [_add(client, token, f"post {index}") for index in range(7)]
    ids, pages = _follow(client, token, f"{LIST}?limit=3")
    assert ids == added[::-1]
    assert pages == 3  # 3 + 3 + 1
    whole = client.get(LIST, headers=bearer(token))
    assert "Link" not in whole.headers
    assert [post["id"] for post in whole.get_json()] == ids


def test_an_exact_last_page_has_no_link(client: FlaskClient, token: str) -> None:
    added = [_add(client, token, f"post {index}") for index in range(4)]
    ids, pages = _follow(client, token, f"{LIST}?limit=2")
    assert ids == added[::-1]
    assert pages == 2


def test_a_page_has_the_listing_shape(client: FlaskClient, token: str) -> None:
    post_id = _add(client, token, "only one")
    response = client.get(f"{LIST}?limit=1", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    [post] = response.get_json()
    assert set(post) == {"id", "text", "created_at"}
    assert (post["id"], post["text"]) == (post_id, "only one")


def test_before_alone_gives_every_older_post(client: FlaskClient, token: str) -> None:
    added = [_add(client, token, f"post {index}") for index in range(3)]
    response = client.get(f"{LIST}?before={added[2]}", headers=bearer(token))
    assert [post["id"] for post in response.get_json()] == [added[1], added[0]]
    assert "Link" not in response.headers


def test_a_page_reflects_a_delete_at_once(client: FlaskClient, token: str) -> None:
    added = [_add(client, token, f"post {index}") for index in range(3)]
    assert client.get(LIST, headers=bearer(token)).status_code == 200  # the whole listing is now cached
    assert client.delete(DELETE, query_string={"post_id": added[1]}, headers=bearer(token)).status_code == 200
    response = client.get(f"{LIST}?limit=10", headers=bearer(token))
    assert [post["id"] for post in response.get_json()] == [added[2], added[0]]


def test_before_must_be_one_of_my_posts(client: FlaskClient, token: str, sign_up: SignUp) -> None:
    other = sign_up("bob@example.com")["access_token"]
    others_post = _add(client, other, "bob's")
    for before in (others_post, str(uuid.uuid4())):
        response = client.get(f"{LIST}?limit=5&before={before}", headers=bearer(token))
        assert response.status_code == 404
        assert response.get_json() == {"error": "Post not found"}


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=-1", "limit=two", "before=not-a-uuid"])
def test_invalid_paging_parameters_are_422(client: FlaskClient, token: str, query: str) -> None:
    response = client.get(f"{LIST}?{query}", headers=bearer(token))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "Validation error"
    assert any(item.startswith("query.") for item in body["extra"]), body


def test_limit_1000_is_accepted(client: FlaskClient, token: str) -> None:
    _add(client, token, "one")
    response = client.get(f"{LIST}?limit=1000", headers=bearer(token))
    assert response.status_code == 200
    assert len(response.get_json()) == 1


def test_pages_need_a_token(client: FlaskClient) -> None:
    response = client.get(f"{LIST}?limit=1")
    assert response.status_code == 401
