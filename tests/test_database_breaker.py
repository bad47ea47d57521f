"""The database breaker: after a timeout or a failed connect, requests that need the database get 503 at once."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql  # type: ignore[import-untyped, unused-ignore]
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from config import Settings, load_settings
from repositories.database import IDLE_PING_SECONDS, DatabaseBreaker, DatabaseUnavailableError, build_engine
from resources import bind, get_db, resources, with_engine
from tests.support.api import ADD, LIST, TEST_SECRET, SignUp, bearer
from tests.support.mariadb import MariaDBServer
from tests.support.net import free_port


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _settings(database_url: str, **overrides: Any) -> Settings:
    return load_settings({}, app_env="testing", database_url=database_url, jwt_secret_key=TEST_SECRET, **overrides)


def _count_connects(engine: Engine) -> list[int]:
    """One entry per connect that got past the breaker (listeners run in the order they were added)."""
    attempts: list[int] = []
    event.listen(engine, "do_connect", lambda *_args: attempts.append(1))
    return attempts


@pytest.fixture
def token(sign_up: SignUp) -> str:
    access: str = sign_up("ada@example.com")["access_token"]
    return access


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose kernel completes TCP handshakes but whose server never says a word (a frozen MariaDB)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@contextmanager
def _swap_engine(app: Flask, settings: Settings) -> Iterator[Engine]:
    """Serve `app` from an engine on `settings` (and its own breaker), then put the working one back."""
    working = resources(app)
    engine = build_engine(settings)
    bind(app, with_engine(working, engine, settings))
    try:
        yield engine
    finally:
        bind(app, working)
        engine.dispose()


def _assert_refused(client: FlaskClient, token: str) -> None:
    response = client.post(ADD, json={"text": "lost?"}, headers=bearer(token))
    assert response.status_code == 503, response.get_json()
    assert response.get_json() == {"error": "Database unavailable, retry later"}
    assert int(response.headers["Retry-After"]) > 0


def test_a_refused_connect_opens_the_breaker_then_requests_fail_fast_without_connecting(
    app: Flask, client: FlaskClient, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.post(ADD, json={"text": "survives"}, headers=bearer(token)).status_code == 200
    assert client.get(LIST, headers=bearer(token)).status_code == 200  # now cached
    nobody_listens = _settings(f"mysql+pymysql://root@127.0.0.1:{free_port()}/none")
    with _swap_engine(app, nobody_listens) as engine:
        attempts = _count_connects(engine)
        with caplog.at_level(logging.WARNING):
            _assert_refused(client, token)
            assert attempts == [1]
            assert resources(app).breaker.is_open
            for _ in range(3):
                _assert_refused(client, token)
            # The cached listing needs no session, so the breaker never refuses it.
            listing = client.get(LIST, headers=bearer(token))
            assert listing.status_code == 200
            assert [post["text"] for post in listing.get_json()] == ["survives"]
        assert attempts == [1]
        # One line when the breaker opens and one for the request that found out; none per refusal.
        assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelno >= logging.WARNING] == [
            "database unreachable (OperationalError on connect)",
            "database unavailable",
        ]


def test_a_server_that_never_answers_opens_the_breaker_on_its_timeout(
    app: Flask, client: FlaskClient, token: str, silent_server: int
) -> None:
    frozen = _settings(
        f"mysql+pymysql://root@127.0.0.1:{silent_server}/none",
        db_connect_timeout_seconds=1,
        db_read_timeout_seconds=1,
    )
    with _swap_engine(app, frozen) as engine:
        attempts = _count_connects(engine)
        _assert_refused(client, token)  # after the 1 s read timeout on the server's greeting
        assert resources(app).breaker.is_open
        _assert_refused(client, token)  # at once
        assert attempts == [1]


def test_errors_that_are_not_an_outage_leave_the_breaker_closed(app: Flask, client: FlaskClient, token: str) -> None:
    duplicate = client.post("/api/v1/auth/sign_up", json={"email_address": "ada@example.com", "password": "x" * 12})
    assert duplicate.status_code == 400  # the unique index refused the insert
    assert not resources(app).breaker.is_open
    assert client.post(ADD, json={"text": "still fine"}, headers=bearer(token)).status_code == 200


def test_a_probe_after_the_cooldown_finds_the_database_back(tmp_path: Path) -> None:
    blocked = tmp_path / "posts.db"
    blocked.mkdir()  # a directory where the database file should be: SQLite cannot open it
    settings = _settings(f"sqlite:///{blocked}", db_retry_seconds=1.0)
    engine = build_engine(settings)
    clock = Clock()
    breaker = DatabaseBreaker.watching(engine, settings, clock)
    attempts = _count_connects(engine)
    try:
        breaker.admit()
        with pytest.raises(OperationalError):
            engine.connect()
        assert breaker.is_open
        clock.now += 0.9
        with pytest.raises(DatabaseUnavailableError):
            breaker.admit()
        assert attempts == [1]

        blocked.rmdir()  # the database can be opened again
        clock.now += 0.1
        breaker.admit()  # the probe
        with pytest.raises(DatabaseUnavailableError):
            breaker.admit()  # nobody else while it runs
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
        assert not breaker.is_open
        breaker.admit()
        breaker.admit()
    finally:
        breaker.release()
        engine.dispose()


@dataclass
class WatchedEngine:
    """A SQLite engine, its breaker on a hand-moved clock, and the settings timing it."""

    engine: Engine
    breaker: DatabaseBreaker
    clock: Clock
    settings: Settings


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[WatchedEngine]:
    settings = _settings(f"sqlite:///{tmp_path / 'posts.db'}")
    engine = build_engine(settings)
    clock = Clock()
    breaker = DatabaseBreaker.watching(engine, settings, clock)
    try:
        yield WatchedEngine(engine, breaker, clock, settings)
    finally:
        breaker.release()
        engine.dispose()


def test_a_caller_admitted_before_a_failure_gets_no_new_connection(watched: WatchedEngine) -> None:
    engine, breaker = watched.engine, watched.breaker
    attempts = _count_connects(engine)
    breaker.admit()
    breaker.failed("another request timed out")  # e.g. while this one waited for the pool
    with pytest.raises(DatabaseUnavailableError):
        engine.connect()
    assert attempts == []
    # The probe, admitted after the failure, may connect.
    watched.clock.now += watched.settings.db_retry_seconds
    breaker.admit()
    with engine.connect():
        pass
    assert attempts == [1]
    assert not breaker.is_open


def test_a_caller_admitted_before_a_failure_gets_no_pooled_connection_either(watched: WatchedEngine) -> None:
    engine, breaker = watched.engine, watched.breaker
    with engine.connect():
        pass  # one connection now waits in the pool
    attempts = _count_connects(engine)
    # Listeners added later run later: this one stands for the idle ping, which could wait R.
    handed_out: list[int] = []
    event.listen(engine.pool, "checkout", lambda *_args: handed_out.append(1))
    breaker.admit()
    breaker.failed("this request's session check timed out, and it carries on to its write")
    with pytest.raises(DatabaseUnavailableError):
        engine.connect()
    assert (attempts, handed_out) == ([], [])
    watched.clock.now += watched.settings.db_retry_seconds
    breaker.admit()  # the probe
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    # The refused connection was discarded; the probe made a new one.
    assert (attempts, handed_out) == ([1], [1])


def test_a_pooled_connection_the_server_closed_is_replaced_without_opening_the_breaker(
    backend: str, request: pytest.FixtureRequest, app: Flask, client: FlaskClient, token: str, settings: Settings
) -> None:
    if backend != "mariadb":
        pytest.skip("the server closes connections only on MariaDB")
    server: MariaDBServer = request.getfixturevalue("mariadb_server")
    assert client.post(ADD, json={"text": "one"}, headers=bearer(token)).status_code == 200
    database = make_url(settings.database_url.get_secret_value()).database
    root = pymysql.connect(host="127.0.0.1", port=server.port, user="root", password="", autocommit=True)
    with root, root.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (database,))
        pooled = [row[0] for row in cursor.fetchall()]
        assert pooled
        for connection_id in pooled:
            cursor.execute(f"KILL CONNECTION {int(connection_id)}")
    # The connections sat idle since: the ping on checkout finds the dead one fast, the pool
    # reconnects; not an outage.
    time.sleep(IDLE_PING_SECONDS + 0.2)
    assert client.post(ADD, json={"text": "two"}, headers=bearer(token)).status_code == 200
    assert not resources(app).breaker.is_open


def test_a_connection_lost_mid_transaction_closes_quietly(app: Flask) -> None:
    # What a statement timing out on a frozen server leaves behind: an invalidated connection
    # inside a transaction. Closing the request's session must not raise (it would be a 500).
    with app.app_context():
        session = get_db()
        session.execute(text("SELECT 1"))
        session.connection().invalidate()
    # Leaving the app context ran its teardown, which closed the session.
    assert not resources(app).breaker.is_open
