"""Fixtures: every database test runs on SQLite and on a throwaway MariaDB server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, event

from app import create_app
from config import Settings, load_settings
from models.tables import PostRow, UserRow
from resources import resources
from tests.support.api import TEST_SECRET, Api, MakeClient, SignUp
from tests.support.mariadb import MariaDBServer, mariadbd_path
from tests.support.otlp import OtlpReceiver
from tests.support.processes import stopping_all
from tests.support.redis import RedisServer, redis_server_path
from tests.support.schema import create_schema
from tests.support.smtp import SmtpServer

BACKENDS = ["sqlite", "mariadb"]
# Every entry point reads `.env` (config.load_env_file); a developer's own `.env` in the checkout
# must not reach the servers and commands the tests start. tests/e2e/test_env_file.py turns it on.
os.environ["FLASK_SKIP_DOTENV"] = "1"
_database_names = itertools.count()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One MariaDB server for the whole run, started by the tests themselves."""
    if mariadbd_path() is None:
        if os.environ.get("CI"):
            pytest.fail("mariadbd is not installed; .ci/run must install mariadb-server")
        pytest.skip("mariadbd is not installed (apt-get install mariadb-server); MariaDB tests skipped")
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"))
    server.start()
    yield server
    server.close()


def _require_redis_server() -> None:
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run must install redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server); Redis tests skipped")


@pytest.fixture(scope="session")
def redis_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis server for the whole run, started by the tests themselves."""
    _require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_server_session: RedisServer) -> RedisServer:
    """The shared Redis server, running and empty at the start of the test."""
    redis_server_session.start()  # a previous test may have stopped it
    redis_server_session.flush()
    return redis_server_session


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone that comes back from a restart with its data (append-only file)."""
    _require_redis_server()
    server = RedisServer(tmp_path / "persistent-redis", persistent=True)
    server.start()
    yield server
    server.stop()


def _new_database(backend: str, request: pytest.FixtureRequest, tmp_dir: Path) -> str:
    name = f"posts_test_{next(_database_names)}"
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / name}.db"
    server: MariaDBServer = request.getfixturevalue("mariadb_server")
    return server.create_database(name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test: "sqlite" or "mariadb"."""
    return str(request.param)


@pytest.fixture(scope="session")
def schema_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with the schema created once per backend (at Alembic's head); tests empty it after themselves."""
    url = _new_database(backend, request, tmp_path_factory.mktemp("db"))
    create_schema(url)
    return url


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database (no tables) on the backend under test."""
    return _new_database(backend, request, tmp_path)


@pytest.fixture
def settings(schema_url: str) -> Settings:
    """Test settings: the shared schema, a fixed signing key, the in-process cache."""
    return load_settings(
        {}, app_env="testing", database_url=schema_url, jwt_secret_key=TEST_SECRET, cache_backend="simple"
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The application on the backend under test; its tables are emptied afterwards."""
    application = create_app(settings)
    yield application
    engine = resources(application).engine
    with engine.begin() as connection:
        connection.execute(delete(PostRow))
        connection.execute(delete(UserRow))
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for `app`."""
    return app.test_client()


@pytest.fixture
def make_client(settings: Settings) -> Iterator[MakeClient]:
    """Factory: a cookie-less client of an app built with setting overrides; tables emptied after."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> FlaskClient:
        application = create_app(load_settings({}, **{**settings.model_dump(), **overrides}))
        apps.append(application)
        return application.test_client(use_cookies=False)

    yield make
    for application in apps:
        with resources(application).engine.begin() as connection:
            connection.execute(delete(PostRow))
            connection.execute(delete(UserRow))
        resources(application).engine.dispose()


@pytest.fixture
def engine(app: Flask) -> Engine:
    """The app's engine (a test module may define its own)."""
    return resources(app).engine


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the test runs, in order."""
    recorded: list[str] = []
    engine: Engine = resources(app).engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        recorded.append(statement.strip().split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    yield recorded
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    """The API through `client` (tests.support.api.Api)."""
    return Api(client)


@pytest.fixture
def sign_up(api: Api) -> SignUp:
    """Create an account and return the sign-up response body (user and tokens)."""
    return api.user


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Factory: a real SMTP server on 127.0.0.1 (tests.support.smtp.SmtpServer's options); all stopped after."""
    yield from stopping_all(lambda **options: SmtpServer(**options).start())


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """An SMTP server that accepts and collects every message."""
    return start_smtp()


@pytest.fixture
def start_collector() -> Iterator[Callable[..., OtlpReceiver]]:

    yield from stopping_all(lambda **options: OtlpReceiver(**options).start())


@pytest.fixture
def collector(start_collector: Callable[..., OtlpReceiver]) -> OtlpReceiver:
    """A trace collector that accepts and keeps every span."""
    return start_collector()
