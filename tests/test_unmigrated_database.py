"""An unmigrated database is named as such: /readyz, the API's 503 and the CLI say to run `alembic upgrade head`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from app import create_app
from blueprints.auth.tokens import issue_tokens
from config import load_settings
from repositories.schema import (
    ALEMBIC_INI,
    NOT_MIGRATED,
    OK,
    UNKNOWN_REVISION,
    Revisions,
    is_missing_schema,
    schema_status,
    shipped_revisions,
)
from resources import resources
from tests.support.api import ADD, LIST, PASSWORD, RESET_PASSWORD, SIGN_IN, SIGN_UP, TEST_SECRET, bearer

MESSAGE = {"error": "Database schema is not migrated: run `alembic upgrade head`"}


@pytest.fixture
def empty_app(database_url: str) -> Iterator[Flask]:
    """The app on a database with no tables at all (nobody ran the migrations)."""
    application = create_app(
        load_settings(
            {}, app_env="testing", database_url=database_url, jwt_secret_key=TEST_SECRET, cache_backend="simple"
        )
    )
    yield application
    resources(application).engine.dispose()


def _alembic(database_url: str, revision: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)


def _assert_not_migrated(response: Any) -> None:
    assert response.status_code == 503, response.get_json()
    assert response.get_json() == MESSAGE
    assert response.mimetype == "application/json"
    assert int(response.headers["Retry-After"]) > 0


def _token(app: Flask) -> str:
    with app.test_request_context():
        return issue_tokens(uuid.uuid4(), 0)["access_token"]


def test_every_call_on_an_empty_database_says_it_is_not_migrated(
    empty_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = empty_app.test_client()
    token = _token(empty_app)
    with caplog.at_level(logging.ERROR, logger="blueprints.errors"):
        _assert_not_migrated(client.post(SIGN_UP, json={"email_address": "ada@example.com", "password": PASSWORD}))
        _assert_not_migrated(client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}))
        _assert_not_migrated(client.post(ADD, json={"text": "hello"}, headers=bearer(token)))
        _assert_not_migrated(client.get(LIST, headers=bearer(token)))
    # The log names the cause (the missing table) and the remedy, once per request.
    lines = [record.getMessage() for record in caplog.records if "not migrated" in record.getMessage()]
    assert len(lines) == 4, lines
    assert all("alembic upgrade head" in line for line in lines)
    assert all("no such table" in line or "doesn't exist" in line for line in lines), lines


def test_readyz_says_the_schema_is_not_migrated(empty_app: Flask) -> None:
    response = empty_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "Service not ready",
        "checks": {"database": "ok", "schema": "not migrated"},
    }
    assert int(response.headers["Retry-After"]) > 0


def test_the_cli_says_the_schema_is_not_migrated(empty_app: Flask) -> None:
    result = empty_app.test_cli_runner().invoke(args=["users", "list"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: database schema not migrated" in result.stderr
    assert "run `alembic upgrade head` first" in result.stderr
    assert "Traceback" not in result.output


def test_after_alembic_upgrade_head_all_is_well(empty_app: Flask, database_url: str) -> None:
    client = empty_app.test_client()
    assert client.get("/readyz").status_code == 503

    _alembic(database_url, "head")

    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok"}}
    signed_up = client.post(SIGN_UP, json={"email_address": "ada@example.com", "password": PASSWORD})
    assert signed_up.status_code == 200, signed_up.get_json()
    token = signed_up.get_json()["access_token"]
    assert client.post(ADD, json={"text": "hello"}, headers=bearer(token)).status_code == 200
    assert [post["text"] for post in client.get(LIST, headers=bearer(token)).get_json()] == ["hello"]
    result = empty_app.test_cli_runner().invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    assert "ada@example.com" in result.stdout


def test_a_database_one_revision_behind_is_not_migrated_either(empty_app: Flask, database_url: str) -> None:
    # 0003 has every users column but not password_reset_tokens (0004): "no such table" / error 1146.
    _alembic(database_url, "0003")
    client = empty_app.test_client()
    assert client.get("/readyz").get_json()["checks"]["schema"] == "not migrated"
    # Sign-up needs only the users table; a password reset reads the table 0004 adds.
    signed_up = client.post(SIGN_UP, json={"email_address": "ada@example.com", "password": PASSWORD})
    assert signed_up.status_code == 200, signed_up.get_json()
    reset = {"token": "a-token-from-a-mail", "new_password": "a brand new passphrase"}
    _assert_not_migrated(client.post(RESET_PASSWORD, json=reset))

    _alembic(database_url, "head")
    assert client.get("/readyz").status_code == 200
    assert client.post(RESET_PASSWORD, json=reset).get_json() == {"error": "Invalid or expired reset token"}


def test_a_revision_this_release_does_not_know_is_reported(empty_app: Flask, database_url: str) -> None:
    _alembic(database_url, "head")
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_release'"))
    finally:
        engine.dispose()
    response = empty_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "schema": "unknown revision"}


def test_schema_status() -> None:
    shipped = Revisions(head="0002", known=frozenset({"0001", "0002"}))
    assert schema_status("0002", shipped) == OK
    assert schema_status(None, shipped) == NOT_MIGRATED
    assert schema_status("0001", shipped) == NOT_MIGRATED
    assert schema_status("0003", shipped) == UNKNOWN_REVISION
    assert schema_status(None, Revisions(head=None, known=frozenset())) == NOT_MIGRATED


def test_the_shipped_head_is_read_once_and_is_the_scripts_head() -> None:
    assert shipped_revisions() is shipped_revisions()
    assert shipped_revisions().head in shipped_revisions().known


@pytest.mark.parametrize(
    ("error", "missing"),
    [
        (OperationalError("SELECT", {}, Exception("no such table: users")), True),
        (OperationalError("SELECT", {}, Exception("no such column: users.tokens_valid_after")), True),
        (ProgrammingError("SELECT", {}, Exception(1146, "Table 'x.users' doesn't exist")), True),
        (OperationalError("SELECT", {}, Exception(1054, "Unknown column 'tokens_valid_after'")), True),
        (OperationalError("SELECT", {}, Exception("database is locked")), False),
        (OperationalError("SELECT", {}, Exception(2003, "Can't connect to MySQL server")), False),
        (ProgrammingError("SELECT", {}, Exception(1064, "You have an error in your SQL syntax")), False),
    ],
)
def test_is_missing_schema(error: Any, missing: bool) -> None:
    assert is_missing_schema(error) is missing


def test_other_database_errors_still_read_as_unavailable(tmp_path: Any) -> None:
    # A database that cannot be opened is an outage, not a schema problem.
    app = create_app(
        load_settings({}, app_env="testing", database_url=f"sqlite:///{tmp_path}", jwt_secret_key=TEST_SECRET)
    )
    response = app.test_client().post(SIGN_UP, json={"email_address": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert response.get_json() != MESSAGE
    resources(app).engine.dispose()
