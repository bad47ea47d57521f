"""Connections as a careful raw PyMySQL app keeps them: a few per worker, reused, no pool library.

The database ceilings (bench/ceiling.py) use it. A connection is taken for one request and
given back after it, so a worker holds as many as it ever served at once: one per thread under
gthread, as with a thread-local connection, and it also works under gevent and sync workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql  # type: ignore[import-untyped, unused-ignore]  # no bundled stubs; types-PyMySQL is optional

CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 10


def connect_arguments(url: str) -> dict[str, Any]:
    """pymysql.connect() keywords for a SQLAlchemy-style URL, e.g. mysql+pymysql://root@127.0.0.1:3306/bench."""
    parts = urlsplit(url)
    if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.hostname:
        raise ValueError(f"not a MySQL/MariaDB URL: {parts.scheme}://{parts.hostname}")
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/"),
        "charset": "utf8mb4",
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "write_timeout": READ_TIMEOUT_S,
    }


class FreeList:
    """Idle connections to one database, all with the same autocommit mode, reused across requests."""

    def __init__(self, url: str, *, autocommit: bool) -> None:
        self._arguments = {**connect_arguments(url), "autocommit": autocommit}
        # deque.append and deque.pop are atomic, so threads need no lock around them.
        self._idle: deque[Any] = deque()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """An idle connection, or a new one; kept for reuse unless the request failed with it."""
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = pymysql.connect(**self._arguments)
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        self._idle.append(connection)
