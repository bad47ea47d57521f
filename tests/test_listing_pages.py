"""Listing pages (docs/api.md, "Listing pages"): `limit` and `before`, a Link to the next page, one statement each."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from services.posts import PAGE_MAX_BYTES
from tests.support.api import LIST, SignUp, bearer, id_and_token
from tests.support.posts import expected_listing, insert_posts

NEXT = re.compile(r'^<(/api/v1/posts/get_my_posts\?[^>]+)>; rel="next"$')


def _next(response: Any) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = NEXT.match(link)
    assert match, link
    return match[1]


def _walk(client: FlaskClient, token: str, url: str, statements: list[str]) -> list[list[dict[str, Any]]]:
    """Every page from `url` on, following the Link headers; each page must be one statement."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        statements.clear()
        response = client.get(next_url, headers=bearer(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert statements == ["SELECT"], next_url
        assert response.headers["Content-Length"] == str(len(response.data))
        page = response.get_json()
        pages.append(page)
        next_url = _next(response)
        if next_url is not None:
            assert next_url.endswith(f"before={page[-1]['id']}")
        assert len(pages) < 50, "the pages never end"
    return pages


def test_pages_follow_their_links_through_the_whole_listing(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, [f"post {n}" for n in range(25)])
    pages = _walk(client, token, f"{LIST}?limit=10", statements)
    assert [len(page) for page in pages] == [10, 10, 5]
    whole = client.get(LIST, headers=bearer(token)).get_json()
    assert [post for page in pages for post in page] == whole
    assert [post["text"] for post in whole] == [f"post {n}" for n in reversed(range(25))]


@pytest.mark.parametrize(
    ("count", "limit", "sizes"), [(20, 10, [10, 10]), (20, 20, [20]), (20, 1000, [20]), (1, 1, [1]), (3, 1, [1, 1, 1])]
)
def test_no_link_once_no_older_post_remains(
    client: FlaskClient,
    sign_up: SignUp,
    engine: Engine,
    statements: list[str],
    count: int,
    limit: int,
    sizes: list[int],
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, [f"post {n}" for n in range(count)])
    assert [len(page) for page in _walk(client, token, f"{LIST}?limit={limit}", statements)] == sizes


def test_a_page_of_an_empty_listing_is_empty(client: FlaskClient, sign_up: SignUp) -> None:
    _, token = id_and_token(sign_up)
    response = client.get(LIST, query_string={"limit": 5}, headers=bearer(token))
    assert (response.status_code, response.get_json(), response.headers.get("Link")) == (200, [], None)


def test_before_alone_gives_up_to_a_thousand_older_posts(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    ids = insert_posts(engine, user_id, [f"p{n}" for n in range(1003)])
    newest = ids[-1]
    pages = _walk(client, token, f"{LIST}?before={newest}", statements)
    assert [len(page) for page in pages] == [1000, 2]
    assert [post["id"] for page in pages for post in page] == [str(post_id) for post_id in reversed(ids[:-1])]


def test_before_the_oldest_post_is_an_empty_page(client: FlaskClient, sign_up: SignUp, engine: Engine) -> None:
    user_id, token = id_and_token(sign_up)
    oldest, _ = insert_posts(engine, user_id, ["old", "new"])
    response = client.get(LIST, query_string={"limit": 10, "before": oldest}, headers=bearer(token))
    assert (response.status_code, response.get_json(), response.headers.get("Link")) == (200, [], None)


def test_a_before_that_is_not_one_of_your_posts_is_404_in_one_statement(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    ada, token = id_and_token(sign_up)
    bob, _ = id_and_token(sign_up, "bob@example.com")
    [bobs] = insert_posts(engine, bob, ["bob's"])
    deleted = insert_posts(engine, ada, ["gone", "kept"])[0]
    assert client.delete(f"/api/v1/posts/delete_my_post?post_id={deleted}", headers=bearer(token)).status_code == 200
    for before in (uuid.uuid4(), bobs, deleted):
        for query in ({"before": before}, {"before": before, "limit": 3}):
            statements.clear()
            response = client.get(LIST, query_string=query, headers=bearer(token))
            assert (response.status_code, response.get_json()) == (404, {"error": "Post not found"}), query
            assert statements == ["SELECT"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "query.limit: Must be greater than or equal to 1 and less than or equal to 1000."),
        ("limit=1001", "query.limit: Must be greater than or equal to 1 and less than or equal to 1000."),
        ("limit=-1", "query.limit: Must be greater than or equal to 1 and less than or equal to 1000."),
        ("limit=ten", "query.limit: Not a valid integer."),
        ("limit=1.5", "query.limit: Not a valid integer."),
        ("limit=", "query.limit: Not a valid integer."),
        ("before=nope", "query.before: Not a valid UUID."),
        ("limit=5&before=", "query.before: Not a valid UUID."),
    ],
)
def test_invalid_page_parameters_are_422(
    client: FlaskClient, sign_up: SignUp, statements: list[str], query: str, message: str
) -> None:
    _, token = id_and_token(sign_up)
    statements.clear()
    response = client.get(f"{LIST}?{query}", headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json() == {"status_code": 422, "error": "Validation error", "extra": [message]}
    assert statements == []


def test_pages_are_not_cached_but_the_whole_listing_still_is(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, ["a", "b", "c"])
    assert client.get(LIST, headers=bearer(token)).status_code == 200  # cached now
    for _ in range(2):
        statements.clear()
        assert len(client.get(LIST, query_string={"limit": 2}, headers=bearer(token)).get_json()) == 2
        assert statements == ["SELECT"]
    expected = expected_listing(engine, user_id)
    statements.clear()
    assert client.get(LIST, headers=bearer(token)).data == expected
    assert statements == []


def test_a_page_ends_early_once_its_body_would_pass_1_mib(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str], backend: str
) -> None:
    user_id, token = id_and_token(sign_up)
    big = PAGE_MAX_BYTES // 3 - 200  # three fit in a page, four do not
    texts = [f"{n}".ljust(big, "x") for n in range(7)] + ["y" * PAGE_MAX_BYTES] * 2  # the last two alone
    insert_posts(engine, user_id, reversed(texts))  # newest first is texts' order
    pages = []
    url: str | None = f"{LIST}?limit=10"
    while url is not None:
        statements.clear()
        response = client.get(url, headers=bearer(token))
        pages.append(response.get_json())
        # A page cut by size leaves rows unread: on MariaDB the server is told to stop sending them.
        assert statements in (["SELECT"], ["SELECT", "KILL"] if backend == "mariadb" else ["SELECT"])
        assert len(response.data) <= PAGE_MAX_BYTES or len(pages[-1]) == 1
        url = _next(response)
    assert [len(page) for page in pages] == [3, 3, 1, 1, 1]
    assert [post["text"] for page in pages for post in page] == texts


def test_a_later_page_seeks_to_its_anchor_on_mariadb(
    client: FlaskClient, sign_up: SignUp, engine: Engine, backend: str
) -> None:
    # Without the index hint MariaDB reads every newer post to reach the anchor when most of
    # the user's posts are older (measured: 511 rows for a page of 10 posts 500 deep).
    if backend != "mariadb":
        pytest.skip("SQLite's planner seeks to the anchor by itself (EXPLAIN QUERY PLAN)")
    user_id, token = id_and_token(sign_up)
    bob, _ = id_and_token(sign_up, "bob@example.com")
    ids = insert_posts(engine, user_id, [f"p{n}" for n in range(3000)])
    insert_posts(engine, bob, [f"b{n}" for n in range(3000)])
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE TABLE posts").all()
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        response = client.get(LIST, query_string={"limit": 10, "before": ids[-200]}, headers=bearer(token))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(response.get_json()) == 10
    # The page's one statement (the token check may add a read of users when its trust ran out).
    [(statement, parameters)] = [(sql, values) for sql, values in sent if "FROM posts" in sql]
    with engine.connect() as connection:
        plan = connection.exec_driver_sql("ANALYZE " + statement, parameters).mappings().all()
    [outer] = [row for row in plan if row["id"] == 1 and row["table"] == "posts"]
    assert outer["type"] == "range", plan
    assert float(outer["r_rows"]) <= 12, plan  # the anchor, the page, one more to see if older ones remain


def test_openapi_documents_the_page_parameters_the_link_the_etag_and_304(client: FlaskClient) -> None:
    path = client.get("/openapi.json").get_json()["paths"][LIST]
    operation = path["get"]
    query = {parameter["name"]: parameter for parameter in operation["parameters"] if parameter["in"] == "query"}
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert query["before"]["schema"] == {"type": "string", "format": "uuid"}
    assert not query["limit"]["required"] and not query["before"]["required"]
    assert [parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "header"] == [
        "If-None-Match"
    ]
    assert set(path) == {"get"}
    assert {"ETag", "Link", "Cache-Control", "Vary"} <= set(operation["responses"]["200"]["headers"])
    assert "content" not in operation["responses"]["304"] and "ETag" in operation["responses"]["304"]["headers"]
    assert {"404", "422"} <= set(operation["responses"])
