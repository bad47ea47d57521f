"""The whole listing: buffered and cached while it fits the cache's entry size, streamed past it.

The entry size is 4 KiB here, so a few posts make a streamed listing; tests/e2e/test_big_listings.py
streams hundreds of MiB through gunicorn and measures the worker's memory.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, event

from config import Settings, load_settings
from models.tables import PostRow
from services.posts import ListingInterruptedError
from tests.support.api import ADD, LIST, TEST_SECRET, SignUp, bearer, id_and_token
from tests.support.posts import expected_listing, insert_posts, kill_listing_queries

ENTRY_BYTES = 4096
# JSON's awkward cases: escapes, non-BMP characters, separators JavaScript mistakes for newlines.
TEXTS = ['say "hi"', "back\\slash", "tab\tnew\nline\x01", "\N{GRINNING FACE} 4-byte", "\u2028\u2029", "é" * 300]


@pytest.fixture
def settings(schema_url: str) -> Settings:
    """The in-process cache, holding bodies of at most ENTRY_BYTES."""
    return load_settings(
        {},
        app_env="testing",
        database_url=schema_url,
        jwt_secret_key=TEST_SECRET,
        cache_backend="simple",
        cache_max_entry_bytes=ENTRY_BYTES,
    )


@pytest.fixture
def invalidations(engine: Engine) -> list[str]:
    """One entry per pooled connection dropped (invalidated) while the test runs."""
    dropped: list[str] = []
    event.listen(engine.pool, "invalidate", lambda *_args: dropped.append("invalidate"))
    return dropped


def _texts(count: int, size: int) -> list[str]:
    return [f"{TEXTS[n % len(TEXTS)]} {n} ".ljust(size, "x") for n in range(count)]


def test_a_listing_that_fits_is_one_select_then_served_from_the_cache(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    user_id, token = id_and_token(sign_up)
    for text in TEXTS:
        assert client.post(ADD, json={"text": text}, headers=bearer(token)).status_code == 200
    statements.clear()
    response = client.get(LIST, headers=bearer(token))
    assert statements == ["SELECT"]
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.data == expected_listing(engine, user_id)  # byte for byte the encoding of before
    assert [post["text"] for post in response.get_json()] == TEXTS[::-1]
    statements.clear()
    assert client.get(LIST, headers=bearer(token)).data == response.data
    assert statements == []


@pytest.mark.parametrize("count", [9, 200])  # just past the entry size; fifty times it
def test_a_listing_past_the_entry_size_is_streamed_whole_and_never_cached(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str], count: int
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(count, 500))
    expected = expected_listing(engine, user_id)
    assert len(expected) > ENTRY_BYTES
    for _ in range(2):
        statements.clear()
        response = client.get(LIST, headers=bearer(token))
        assert response.status_code == 200
        assert "Content-Length" not in response.headers  # streamed
        assert response.data == expected
        assert statements == ["SELECT"]  # one statement, and not cached: the second is one too


@pytest.mark.parametrize(("extra", "cached"), [(0, True), (1, False)])
def test_a_listing_of_exactly_the_entry_size_is_cached_and_one_byte_more_is_streamed(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str], extra: int, cached: bool
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, ["y" * 100])
    size = len(expected_listing(engine, user_id))
    with engine.begin() as connection:
        connection.execute(delete(PostRow))
    insert_posts(engine, user_id, ["y" * (100 + ENTRY_BYTES - size + extra)])
    expected = expected_listing(engine, user_id)
    assert len(expected) == ENTRY_BYTES + extra
    response = client.get(LIST, headers=bearer(token))
    assert (response.data, "Content-Length" in response.headers) == (expected, cached)
    statements.clear()
    assert client.get(LIST, headers=bearer(token)).data == expected
    assert statements == ([] if cached else ["SELECT"])


def test_a_stream_keeps_its_connection_after_the_view_returns_and_releases_it_at_the_end(
    client: FlaskClient, sign_up: SignUp, engine: Engine, invalidations: list[str]
) -> None:
    # Flask runs the request's teardown (which closes the request's session) when the view
    # returns, before the body is sent: the stream reads on a connection of its own.
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(300, 500))
    response = client.get(LIST, headers=bearer(token), buffered=False)
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    body = b"".join(response.iter_encoded())
    response.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert invalidations == []  # read to the end: the connection goes back to the pool
    assert body == expected_listing(engine, user_id)


def test_an_abandoned_stream_and_a_head_request_release_the_connection(
    client: FlaskClient,
    sign_up: SignUp,
    engine: Engine,
    invalidations: list[str],
    statements: list[str],
    backend: str,
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(300, 500))
    statements.clear()
    response = client.get(LIST, headers=bearer(token), buffered=False)
    assert next(response.iter_encoded()).startswith(b"[")
    response.close()  # the client went away
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    head = client.head(LIST, headers=bearer(token))  # the body is never read, only closed
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    head.close()
    assert head.status_code == 200 and head.data == b""
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # MariaDB: the rest of an unbuffered result is not read for nothing; the server is told to stop
    # sending it, and the connection goes back to the pool, clean.
    assert statements == (["SELECT", "KILL"] * 2 if backend == "mariadb" else ["SELECT"] * 2)
    assert invalidations == []
    assert client.get(LIST, headers=bearer(token)).data == expected_listing(engine, user_id)


# An interrupted statement (an operator's KILL QUERY, max_statement_time) and a lost connection.
@pytest.mark.parametrize("kill", ["QUERY", "CONNECTION"])
def test_a_database_error_mid_stream_cuts_the_body_and_is_logged(
    client: FlaskClient,
    sign_up: SignUp,
    engine: Engine,
    backend: str,
    schema_url: str,
    caplog: pytest.LogCaptureFixture,
    kill: str,
) -> None:
    if backend != "mariadb":
        pytest.skip("needs a server whose query can be killed mid-result")
    user_id, token = id_and_token(sign_up)
    # Far more than the socket buffers hold, so most rows are still unsent when the query dies.
    insert_posts(engine, user_id, ["x" * (1024 * 1024)] * 48)
    response = client.get(LIST, headers=bearer(token), buffered=False)
    chunks = response.iter_encoded()
    first = next(chunks)
    assert response.status_code == 200 and first.startswith(b"[")
    assert kill_listing_queries(schema_url, kill) == 1
    received = len(first)
    with (
        caplog.at_level(logging.ERROR, logger="blueprints.posts.listing"),
        pytest.raises(ListingInterruptedError) as raised,
    ):
        for chunk in chunks:
            received += len(chunk)
    response.close()
    assert received < 48 * 1024 * 1024
    assert raised.value.sent == received
    assert f"listing of user {user_id} cut after {received} bytes: OperationalError" in caplog.text
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    listing: list[dict[str, Any]] = json.loads(client.get(LIST, headers=bearer(token)).data)
    assert len(listing) == 48  # the next request is served normally
