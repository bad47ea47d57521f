"""The database readiness probe: a `SELECT 1` on a fresh connection with short timeouts."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


class DatabaseProbe:
    """Answers whether the database takes a new connection and a statement right now.

    It has an engine of its own: no pool (each probe is a fresh connection, so it tests what a
    new request would need) and timeouts of a couple of seconds, so a frozen database answers
    "unavailable" quickly instead of after the request engine's longer timeouts.
    """

    def __init__(self, database_url: str, timeout: float) -> None:
        self._engine = probe_engine(database_url, timeout)

    def __call__(self) -> bool:
        """True when `SELECT 1` succeeded; the failure's type is logged, never its message."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the type is enough for the log
            log.warning("readiness: database unavailable (%s)", type(exc).__name__)
            return False
        return True


def probe_engine(database_url: str, timeout: float) -> Engine:
    """A pool-less engine whose connect and every read give up after `timeout` seconds (the probes' engine)."""
    url = make_url(database_url)
    options: dict[str, Any] = {"poolclass": NullPool, "hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": timeout}
    else:
        # PyMySQL applies connect_timeout to the TCP connect only; read_timeout bounds the
        # handshake of a server that accepts connections but never answers (frozen).
        options["connect_args"] = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    return create_engine(url, **options)
