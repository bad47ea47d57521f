"""Fixtures: a real gunicorn (the shipped gunicorn.conf.py, three workers) on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import E2E_SECRET, WORKERS, StartServer
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.net import free_port
from tests.support.schema import create_schema


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Factory: schema into the given empty database, then gunicorn on it; all stopped afterwards."""
    servers: list[LiveServer] = []

    def start(database_url: str, *, create_tables: bool = True, **extra_env: str) -> LiveServer:
        if create_tables:
            create_schema(database_url)
        index = len(servers)
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
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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
