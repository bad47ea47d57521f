"""Readiness checks: can this process reach its database and (when configured) Redis right now?"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, current_app
from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url

from core.config import Settings

log = logging.getLogger(__name__)

READINESS_KEY = "posts.readiness"
OK = "ok"
UNAVAILABLE = "unavailable"


class Readiness:
    """Probes the database with `SELECT 1` and Redis with PING, each bounded by a short timeout.

    The database probe has an engine of its own: no pool (each probe is a fresh connection, so
    it tests what a new request would need) and timeouts of a couple of seconds, so a frozen
    database answers "unavailable" quickly instead of after the request engine's longer timeouts.
    """

    def __init__(self, settings: Settings) -> None:
        self._engine = _probe_engine(settings.database_url, settings.health_timeout_seconds)
        self._redis: redis.Redis | None = None
        if settings.redis_url:
            timeout = settings.redis_timeout_seconds
            self._redis = redis.Redis.from_url(
                settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )

    def checks(self) -> dict[str, str]:
        """`{"database": "ok" | "unavailable", "redis": ...}`; redis only when configured."""
        results = {"database": self._check_database()}
        if self._redis is not None:
            results["redis"] = self._check_redis(self._redis)
        return results

    def _check_database(self) -> str:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the type is enough for the log
            log.warning("readiness: database unavailable (%s)", type(exc).__name__)
            return UNAVAILABLE
        return OK

    @staticmethod
    def _check_redis(client: redis.Redis) -> str:
        try:
            client.ping()
        except Exception as exc:
            log.warning("readiness: redis unavailable (%s)", type(exc).__name__)
            return UNAVAILABLE
        return OK


def _probe_engine(database_url: str, timeout: float) -> Engine:
    url = make_url(database_url)
    options: dict[str, Any] = {"poolclass": NullPool, "hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": timeout}
    else:
        # PyMySQL applies connect_timeout to the TCP connect only; read_timeout bounds the
        # handshake of a server that accepts connections but never answers (frozen).
        options["connect_args"] = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    return create_engine(url, **options)


def init_readiness(app: Flask, settings: Settings) -> None:
    """Attach the readiness probe to the app."""
    app.extensions[READINESS_KEY] = Readiness(settings)


def readiness() -> Readiness:
    """The current app's readiness probe."""
    probe: Readiness = current_app.extensions[READINESS_KEY]
    return probe
