"""The whole listing: buffered and cached while it fits the cache's entry size, streamed past it when long.

The entry size is 4 KiB here, so a few posts make a streamed listing; tests/e2e/test_big_listings.py
streams hundreds of MiB through gunicorn and measures the worker's memory.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, event, select

from config import Settings, load_settings
from models.tables import PostRow
from services.posts import HEAD_POSTS, SMALL_POST, STREAM_BATCH_BYTES, ListingInterruptedError
from tests.support.api import ADD, LIST, TEST_SECRET, SignUp, bearer, id_and_token
from tests.support.posts import expected_listing, insert_posts, kill_connections

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


def test_a_short_listing_past_the_entry_size_is_answered_whole_and_never_cached(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str]
) -> None:
    # Nine short posts: read at once (at most HEAD_POSTS of at most SMALL_POST), just past the entry size.
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(9, 500))
    expected = expected_listing(engine, user_id)
    assert len(expected) > ENTRY_BYTES
    for _ in range(2):
        statements.clear()
        response = client.get(LIST, headers=bearer(token))
        assert response.headers["Content-Length"] == str(len(expected))
        assert response.data == expected
        assert statements == ["SELECT"]  # read again each time: not cached


@pytest.mark.parametrize(("count", "size"), [(HEAD_POSTS + 1, 500), (3, SMALL_POST + 1)])
def test_a_long_listing_past_the_entry_size_is_streamed_whole_and_never_cached(
    client: FlaskClient, sign_up: SignUp, engine: Engine, statements: list[str], count: int, size: int
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(count, size))
    expected = expected_listing(engine, user_id)
    assert len(expected) > ENTRY_BYTES
    seen = []
    for _ in range(2):
        statements.clear()
        response = client.get(LIST, headers=bearer(token))
        assert response.status_code == 200
        assert "Content-Length" not in response.headers  # streamed
        assert response.data == expected
        # The short read (which finds the listing long), the start, then keyset batches of about
        # STREAM_BATCH_BYTES (MariaDB: the start's unread rest is stopped with KILL QUERY).
        assert statements[0] == "SELECT" and set(statements) <= {"SELECT", "KILL"}
        assert statements.count("SELECT") == 2 + math.ceil((len(expected) - ENTRY_BYTES) / STREAM_BATCH_BYTES)
        seen.append(statements[:])
    assert seen[0] == seen[1]  # not cached: the second reads it all again


@pytest.mark.parametrize(("extra", "cached"), [(0, True), (1, False)])
def test_a_listing_of_exactly_the_entry_size_is_cached_and_one_byte_more_is_not(
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
    assert (response.data, response.headers["Content-Length"]) == (expected, str(len(expected)))  # one short post
    statements.clear()
    assert client.get(LIST, headers=bearer(token)).data == expected
    assert statements == ([] if cached else ["SELECT"])


def test_a_stream_holds_no_connection_while_it_is_sent(
    client: FlaskClient, sign_up: SignUp, engine: Engine, invalidations: list[str]
) -> None:
    # A client that stops reading must not hold a pooled connection: each batch's SELECT gives
    # its connection back before the batch is yielded.
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(1500, 500))  # about three batches
    response = client.get(LIST, headers=bearer(token), buffered=False)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    chunks = []
    for chunk in response.iter_encoded():
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        chunks.append(chunk)
    response.close()
    assert len(chunks) >= 4
    assert invalidations == []  # every batch read to its end: the connections go back clean
    assert b"".join(chunks) == expected_listing(engine, user_id)


def test_an_abandoned_stream_and_a_head_request_read_only_the_start(
    client: FlaskClient,
    sign_up: SignUp,
    engine: Engine,
    invalidations: list[str],
    statements: list[str],
    backend: str,
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(1500, 500))
    statements.clear()
    response = client.get(LIST, headers=bearer(token), buffered=False)
    assert next(response.iter_encoded()).startswith(b"[")
    response.close()  # the client went away
    head = client.head(LIST, headers=bearer(token))  # the body is never read
    head.close()
    assert head.status_code == 200 and head.data == b""
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # Each: the short read (which finds the listing long), then the start. MariaDB: the rest of the
    # start's unbuffered result is not read for nothing; the server is told to stop sending it, and
    # the connection goes back to the pool, clean. No batch was read.
    start = ["SELECT", "KILL"] if backend == "mariadb" else ["SELECT"]
    assert statements == (["SELECT", *start] * 2)
    assert invalidations == []
    assert client.get(LIST, headers=bearer(token)).data == expected_listing(engine, user_id)


def test_posts_deleted_while_a_listing_streams_are_skipped_not_repeated(
    client: FlaskClient, sign_up: SignUp, engine: Engine
) -> None:
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, _texts(1500, 500))
    response = client.get(LIST, headers=bearer(token), buffered=False)
    chunks = response.iter_encoded()
    body = next(chunks)
    with engine.begin() as connection:  # the oldest posts go while the client reads the start
        oldest = connection.execute(select(PostRow.seq).order_by(PostRow.seq).limit(10)).scalars().all()
        connection.execute(delete(PostRow).where(PostRow.seq.in_(oldest)))
    body += b"".join(chunks)
    response.close()
    listing = json.loads(body)
    assert len(listing) == 1490
    assert len({post["id"] for post in listing}) == 1490
    assert body == expected_listing(engine, user_id)


def test_a_database_error_mid_stream_cuts_the_body_and_is_logged(
    client: FlaskClient,
    sign_up: SignUp,
    engine: Engine,
    backend: str,
    schema_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend != "mariadb":
        pytest.skip("needs a server that can drop the service's connections")
    user_id, token = id_and_token(sign_up)
    insert_posts(engine, user_id, ["x" * (1024 * 1024)] * 48)
    response = client.get(LIST, headers=bearer(token), buffered=False)
    chunks = response.iter_encoded()
    first = next(chunks)
    assert response.status_code == 200 and first.startswith(b"[")
    assert kill_connections(schema_url) >= 1  # the pooled connection the next batch would use
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
