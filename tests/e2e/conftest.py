"""Fixtures: a real gunicorn (the shipped gunicorn.conf.py, three workers) on a fresh database."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import E2E_SECRET, WORKERS, StartServer
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.mariadb import MariaDBServer, mariadbd_path
from tests.support.net import free_port
from tests.support.processes import stopping_all
from tests.support.schema import create_schema


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Factory: schema into the given empty database, then gunicorn on it; all stopped afterwards."""
    indexes = itertools.count()

    def start(database_url: str, *, create_tables: bool = True, **extra_env: str) -> LiveServer:
        if create_tables:
            create_schema(database_url)
        index = next(indexes)
        cache_dir = tmp_path / f"cache-{index}"
        cache_dir.mkdir()
        env = {
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "JWT_SECRET_KEY": E2E_SECRET,
            "CACHE_DIR": str(cache_dir),
            **extra_env,
        }
        workers = int(env.get("WEB_CONCURRENCY", WORKERS))
        server = start_gunicorn(
            "wsgi:app",
            port=free_port(),
            workers=workers,
            log_path=tmp_path / f"gunicorn-{index}.log",
            env=env,
        )
        return server

    yield from stopping_all(start)


@pytest.fixture
def live_server(start_server: StartServer, database_url: str) -> LiveServer:
    """gunicorn with three workers on a fresh database of the backend under test."""
    return start_server(database_url)


@pytest.fixture
def shared_database(backend: str, database_url: str) -> str:
    """An empty database several instances can share: only MariaDB is a shared server."""
    if backend != "mariadb":
        pytest.skip("several hosts share one MySQL/MariaDB server; a SQLite file is not a multi-host database")
    return database_url


@pytest.fixture
def own_mariadb(backend: str, tmp_path: Path) -> Iterator[MariaDBServer]:
    """A MariaDB server of this test alone, since the test stops, kills or freezes it."""
    if backend != "mariadb":
        pytest.skip("database outage is simulated by stopping a MariaDB server; SQLite cannot go down")
    if mariadbd_path() is None:
        if os.environ.get("CI"):
            pytest.fail("mariadbd is not installed; .ci/run must install mariadb-server")
        pytest.skip("mariadbd is not installed (apt-get install mariadb-server); MariaDB tests skipped")
    server = MariaDBServer(tmp_path / "outage-mariadb")
    server.start()
    yield server
    server.close()
