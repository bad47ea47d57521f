"""Busy is not down: a lock wait, or no pooled connection in time, is a 503 "Server busy" for that request alone.

The database stays healthy in every test here: the breaker stays closed, other requests are
served, and the next attempt once the lock is gone succeeds. The outage side of the rule is in
tests/test_database_breaker.py and tests/e2e/test_database_outage.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import Connection, create_engine, select

from config import Settings, load_settings
from models.tables import UserRow
from resources import resources
from tests.support.api import LIST, TEST_SECRET, Api, MakeClient, bearer
from tests.support.net import free_port

BUSY = {"error": "Server busy, retry later"}


@pytest.fixture
def settings(schema_url: str) -> Settings:
    """Short timeouts: a lock wait of 1 s ends before the 2 s read timeout; a checkout waits 1 + 2 s."""
    return load_settings(
        {},
        app_env="testing",
        database_url=schema_url,
        jwt_secret_key=TEST_SECRET,
        cache_backend="simple",
        db_connect_timeout_seconds=1,
        db_read_timeout_seconds=2,
        db_lock_wait_seconds=1,
        db_pool_size=2,
        metrics_port=free_port(),  # the 503 counter by cause
    )


def _busy_count() -> float:
    return REGISTRY.get_sample_value("posts_api_unavailable_responses_total", {"cause": "busy"}) or 0.0


@contextmanager
def _account_locked_elsewhere(schema_url: str, backend: str, user_id: str) -> Iterator[Connection]:
    """Another session (an operator's console, a migration) holds the account's row: MariaDB's row lock,
    SQLite's database write lock."""
    engine = create_engine(schema_url)
    try:
        with engine.connect() as connection:
            if backend == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.begin()
                connection.execute(select(UserRow.id).where(UserRow.id == user_id).with_for_update()).one()
            yield connection
            connection.rollback()
    finally:
        engine.dispose()


def test_a_lock_held_elsewhere_is_busy_for_that_request_alone(
    app: Flask, api: Api, schema_url: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    ada, bob = api.user("ada@example.com"), api.user("bob@example.com")
    api.add_post(bob["access_token"], "bob's")
    before = _busy_count()
    with caplog.at_level(logging.WARNING), _account_locked_elsewhere(schema_url, backend, ada["id"]):
        response = api.sign_out(ada["refresh_token"])
        assert (response.status_code, response.get_json()) == (503, BUSY)
        assert response.headers["Retry-After"] == "1"
        assert api.texts(bob["access_token"]) == ["bob's"]  # reads go on
        if backend == "mariadb":  # another account's row: not locked (SQLite locks every write)
            api.add_post(bob["access_token"], "bob's second")
    assert not resources(app).breaker.is_open
    assert _busy_count() == before + 1
    assert "server busy" in caplog.text and "database unavailable" not in caplog.text
    assert api.sign_out(ada["refresh_token"]).status_code == 200  # the lock is gone: served


def test_no_pooled_connection_in_time_is_busy_not_down(
    app: Flask, client: FlaskClient, api: Api, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    if backend != "mariadb":
        pytest.skip("the MySQL/MariaDB pool is fixed in size; SQLite opens connections as needed")
    token = api.user()["access_token"]
    before = _busy_count()
    engine = resources(app).engine
    with caplog.at_level(logging.WARNING), engine.connect() as first, engine.connect() as second:
        # Every pooled connection is in use (by something slow, say), while the database is fine.
        first.exec_driver_sql("SELECT 1")
        second.exec_driver_sql("SELECT 1")
        response = client.get(LIST, headers=bearer(token))  # a miss: it needs the database
        assert (response.status_code, response.get_json()) == (503, BUSY)
        assert response.headers["Retry-After"] == "1"
    assert not resources(app).breaker.is_open
    assert _busy_count() == before + 1
    assert "no pooled database connection came free in time" in caplog.text
    assert "database unavailable" not in caplog.text
    assert client.get(LIST, headers=bearer(token)).status_code == 200


def test_a_page_needs_one_pooled_connection_at_a_time(
    make_client: MakeClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With one pooled connection, a request that held the token check's connection while its
    # listing waited for a second would wait for itself until the pool's timeout.
    if backend != "mariadb":
        pytest.skip("the MySQL/MariaDB pool is fixed in size; SQLite opens connections as needed")
    client = make_client(db_pool_size=1)
    api = Api(client)
    token = api.user()["access_token"]
    for text in ("one", "two", "three"):
        api.add_post(token, text)
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 60)  # the session must be read again
    page = client.get(LIST, query_string={"limit": 2}, headers=bearer(token))
    assert page.status_code == 200, page.get_json()
    assert [post["text"] for post in page.get_json()] == ["three", "two"]
