"""The benchmark's write ceiling on a real MariaDB: it writes the service's row shape, which the service lists."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest
from flask.testing import FlaskClient

from app import create_app
from bench import ceiling
from bench.ceiling import FreeList
from config import load_settings
from resources import resources
from tests.support.api import PASSWORD, TEST_SECRET, bearer
from tests.support.mariadb import MariaDBServer
from tests.support.schema import create_schema

LIST = "/api/v1/posts/get_my_posts"
_database_numbers = itertools.count()


@pytest.fixture
def bench_url(mariadb_server: MariaDBServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bench-like database with the schema, given to the ceiling app as DATABASE_URL."""
    url = mariadb_server.create_database(f"bench_ceilings_{next(_database_numbers)}")
    create_schema(url)
    monkeypatch.setenv("DATABASE_URL", url)
    # Each test's connections go to its own database (the views keep them per process).
    ceiling.writers.cache_clear()
    yield url
    ceiling.writers.cache_clear()


@pytest.fixture
def service(bench_url: str) -> Iterator[FlaskClient]:
    """The service on the same database."""
    settings = load_settings(
        {}, app_env="testing", database_url=bench_url, jwt_secret_key=TEST_SECRET, cache_backend="simple"
    )
    app = create_app(settings)
    yield app.test_client()
    resources(app).engine.dispose()


def test_the_write_ceiling_stores_rows_the_service_lists_as_its_own(service: FlaskClient) -> None:
    signed_up = service.post("/api/v1/auth/sign_up", json={"email_address": "c@example.com", "password": PASSWORD})
    assert signed_up.status_code == 200
    user_id, token = signed_up.json["id"], signed_up.json["access_token"]  # type: ignore[index]
    raw = ceiling.app.test_client()
    assert raw.get("/").status_code == 200

    written = raw.post(f"/write?user_id={user_id}", data=orjson.dumps({"text": "raw 🎉 row"}))
    assert written.status_code == 200
    assert (
        service.post("/api/v1/posts/add-post", json={"text": "service row"}, headers=bearer(token)).status_code == 200
    )
    raw.post(f"/write?user_id={user_id}", data=orjson.dumps({"text": "x" * 70_000}))

    listing = service.get(LIST, headers=bearer(token))
    assert [post["text"] for post in listing.json] == ["x" * 70_000, "service row", "raw 🎉 row"]  # type: ignore[union-attr]
    assert listing.json[-1]["id"] == written.json["id"]  # type: ignore[index]


def test_the_free_list_reuses_a_connection_but_not_one_a_request_failed_with(bench_url: str) -> None:
    connections = FreeList(bench_url)
    with connections.connection() as first:
        pass
    with connections.connection() as second:
        assert second is first
    with pytest.raises(RuntimeError), connections.connection() as failed:
        assert failed is first
        raise RuntimeError("the request failed")
    with connections.connection() as third:
        assert third is not first
        with third.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
