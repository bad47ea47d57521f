"""/healthz and /readyz: no auth, no caching, database and Redis checks, documented in OpenAPI."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import load_settings
from tests.support.api import TEST_SECRET
from tests.support.redis import RedisServer


def _app(database_url: str, **overrides: object) -> Flask:
    return create_app(
        load_settings({}, app_env="testing", database_url=database_url, jwt_secret_key=TEST_SECRET, **overrides)
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused


def test_healthz_answers_without_any_io(client: FlaskClient, statements: list[str]) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    assert statements == []


def test_readyz_is_200_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("where", ["sqlite-directory", "mysql-closed-port"])
def test_readyz_is_503_in_the_error_shape_when_the_database_is_unreachable(tmp_path: Path, where: str) -> None:
    url = (
        f"sqlite:///{tmp_path}" if where == "sqlite-directory" else f"mysql+pymysql://u:p@127.0.0.1:{_closed_port()}/x"
    )
    response = _app(url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json() == {
        "error": "Service not ready",
        "checks": {"database": "unavailable", "schema": "unavailable"},
    }


def test_readyz_checks_redis_when_it_is_configured(schema_url: str, redis_server: RedisServer) -> None:
    client = _app(schema_url, redis_url=redis_server.url).test_client()
    assert client.get("/readyz").get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "redis": "ok"},
    }

    redis_server.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json() == {
        "error": "Service not ready",
        "checks": {"database": "ok", "schema": "ok", "redis": "unavailable"},
    }
    assert client.get("/healthz").status_code == 200  # liveness does not depend on Redis

    redis_server.start()
    assert client.get("/readyz").status_code == 200


def test_health_endpoints_are_documented_without_security(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/healthz"]["get"]["responses"]) >= {"200"}
    readyz = paths["/readyz"]["get"]
    assert {"200", "503"} <= set(readyz["responses"])
    assert readyz["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotReady"
    }
    assert "security" not in readyz and "security" not in paths["/healthz"]["get"]
