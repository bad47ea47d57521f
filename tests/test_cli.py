"""Operator CLI (users, posts, demo-data, openapi) on both databases, through Flask's CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from commands.demo import DEMO_PASSWORD
from config import load_settings
from models.tables import PostRow, UserRow
from resources import resources
from tests.support.api import ADD, LIST, PASSWORD, SIGN_IN, TEST_SECRET, SignUp, bearer

REPO_ROOT = Path(__file__).resolve().parents[1]


def cli(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=input)


def count(app: Flask, table: type[UserRow] | type[PostRow]) -> int:
    with resources(app).engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def listing(client: FlaskClient, token: str) -> list[str]:
    response = client.get(LIST, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return [post["text"] for post in response.get_json()]


def add(client: FlaskClient, token: str, text: str) -> None:
    assert client.post(ADD, json={"text": text}, headers=bearer(token)).status_code == 200


def test_users_create_prompts_twice_for_a_hidden_password(app: Flask, client: FlaskClient) -> None:
    secret = "a long enough secret"
    result = cli(app, "users", "create", "Grace@Example.com", input=f"{secret}\n{secret}\n")
    assert result.exit_code == 0, result.output
    assert "created user grace@example.com" in result.stdout
    assert secret not in result.output  # hidden input is never echoed
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    signed_in = client.post(SIGN_IN, json={"email_address": "grace@example.com", "password": secret})
    assert signed_in.status_code == 200


def test_users_create_asks_again_when_the_confirmation_differs(app: Flask) -> None:
    result = cli(app, "users", "create", "grace@example.com", input="first password\nsecond password\n")
    assert result.exit_code != 0  # re-prompted, then input ran out
    assert "do not match" in result.output
    assert count(app, UserRow) == 0


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", "a long enough secret", "invalid email address"),
        ("grace@example.com", "short", "invalid password: a password has 8 to 256 characters"),
        ("grace@example.com", "x" * 257, "invalid password"),
    ],
)
def test_users_create_refuses_bad_input(app: Flask, email: str, password: str, message: str) -> None:
    result = cli(app, "users", "create", email, "--password", password)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert count(app, UserRow) == 0


def test_users_create_refuses_a_duplicate_email_in_any_case(app: Flask, sign_up: SignUp) -> None:
    sign_up("grace@example.com")
    result = cli(app, "users", "create", "GRACE@example.com", "--password", "a long enough secret")
    assert result.exit_code == 1
    assert "an account with email grace@example.com already exists" in result.stderr
    assert count(app, UserRow) == 1


def test_users_list_shows_every_account_with_its_post_count(app: Flask, client: FlaskClient, sign_up: SignUp) -> None:
    ada = sign_up("ada@example.com")
    bob = sign_up("bob@example.com")
    add(client, ada["access_token"], "one")
    add(client, ada["access_token"], "two")
    result = cli(app, "users", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    by_email = {line.split()[1]: line for line in lines}
    assert by_email["ada@example.com"].startswith(ada["id"]) and by_email["ada@example.com"].endswith("posts=2")
    assert by_email["bob@example.com"].startswith(bob["id"]) and by_email["bob@example.com"].endswith("posts=0")
    assert "2 user(s)" in result.stderr


def test_users_list_of_an_empty_database(app: Flask) -> None:
    result = cli(app, "users", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "0 user(s)" in result.stderr


def test_users_delete_removes_the_account_its_posts_and_its_cached_listing(
    app: Flask, client: FlaskClient, sign_up: SignUp
) -> None:
    ada = sign_up("ada@example.com")["access_token"]
    bob = sign_up("bob@example.com")["access_token"]
    add(client, ada, "ada's")
    add(client, bob, "bob's")
    assert listing(client, ada) == ["ada's"]  # now cached

    result = cli(app, "users", "delete", "ADA@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted user ada@example.com" in result.stdout
    assert count(app, UserRow) == 1 and count(app, PostRow) == 1  # ada's post went with her (cascade)
    # Her token, still unexpired, is refused (docs/api.md, "Sessions": tokens of a deleted account end at once).
    refused = client.get(LIST, headers=bearer(ada))
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "Token has been revoked"}
    assert listing(client, bob) == ["bob's"]
    assert client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}).status_code == 401


def test_users_delete_asks_for_confirmation(app: Flask, sign_up: SignUp) -> None:
    sign_up("ada@example.com")
    result = cli(app, "users", "delete", "ada@example.com", input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output
    assert count(app, UserRow) == 1


@pytest.mark.parametrize(
    ("email", "message"),
    [("nobody@example.com", "no account with email nobody@example.com"), ("not an email", "invalid email address")],
)
def test_users_delete_refuses_unknown_or_invalid_emails(app: Flask, sign_up: SignUp, email: str, message: str) -> None:
    sign_up("ada@example.com")
    result = cli(app, "users", "delete", email, "--yes")
    assert result.exit_code == 1
    assert message in result.stderr
    assert count(app, UserRow) == 1


def test_posts_purge_deletes_only_that_users_posts_and_retires_the_cache(
    app: Flask, client: FlaskClient, sign_up: SignUp
) -> None:
    ada = sign_up("ada@example.com")["access_token"]
    bob = sign_up("bob@example.com")["access_token"]
    for text in ("one", "two", "three"):
        add(client, ada, text)
    add(client, bob, "bob's")
    assert listing(client, ada) == ["three", "two", "one"]  # now cached

    result = cli(app, "posts", "purge", "--user", "ada@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted 3 post(s) of ada@example.com" in result.stdout
    assert listing(client, ada) == []
    assert listing(client, bob) == ["bob's"]
    assert count(app, UserRow) == 2  # the account stays


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--user", "nobody@example.com", "--yes"], 1, "no account with email nobody@example.com"),
        (["--user", "@@", "--yes"], 1, "invalid email address"),
        (["--yes"], 2, "Missing option '--user'"),
    ],
)
def test_posts_purge_refuses_bad_input(
    app: Flask, client: FlaskClient, sign_up: SignUp, args: list[str], exit_code: int, message: str
) -> None:
    add(client, sign_up("ada@example.com")["access_token"], "kept")
    result = cli(app, "posts", "purge", *args)
    assert result.exit_code == exit_code
    assert message in result.stderr
    assert count(app, PostRow) == 1


def test_demo_data_creates_users_and_posts_and_skips_existing_ones(app: Flask, client: FlaskClient) -> None:
    result = cli(app, "demo-data", "--users", "2", "--posts", "3", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "created 2 user(s) with 3 post(s) each" in result.stdout
    assert count(app, UserRow) == 2 and count(app, PostRow) == 6
    signed_in = client.post(SIGN_IN, json={"email_address": "demo-2@example.com", "password": "demo-password"})
    assert signed_in.status_code == 200
    assert len(listing(client, signed_in.get_json()["access_token"])) == 3

    again = cli(app, "demo-data", "--users", "3", "--posts", "1")
    assert again.exit_code == 0, again.output
    assert "created 1 user(s) with 1 post(s) each; skipped 2 existing" in again.stdout
    assert count(app, UserRow) == 3 and count(app, PostRow) == 7

    # A repeat run creates nothing, and says so rather than "0 user(s) with 1 post(s) each".
    repeat = cli(app, "demo-data", "--users", "3", "--posts", "1")
    assert repeat.exit_code == 0, repeat.output
    assert "created no user; skipped 3 existing demo user(s)" in repeat.stdout, repeat.stdout
    assert "post(s) each" not in repeat.stdout
    assert count(app, UserRow) == 3 and count(app, PostRow) == 7


def test_demo_data_help_names_the_password(app: Flask) -> None:
    result = cli(app, "demo-data", "--help")
    assert result.exit_code == 0, result.output
    assert f"(password: {DEMO_PASSWORD})" in " ".join(result.stdout.split())


def test_demo_data_rejects_bad_counts(app: Flask) -> None:
    result = cli(app, "demo-data", "--users", "0")
    assert result.exit_code == 2
    assert "--users" in result.stderr
    assert count(app, UserRow) == 0


def test_demo_data_refuses_to_run_in_production(schema_url: str) -> None:
    settings = load_settings({}, app_env="production", database_url=schema_url, jwt_secret_key=TEST_SECRET)
    app = create_app(settings)
    result = cli(app, "demo-data", "--users", "1")
    assert result.exit_code == 1
    assert "refuses to run with APP_ENV=production" in result.stderr
    assert count(app, UserRow) == 0
    resources(app).engine.dispose()


def test_commands_report_an_unreachable_database_clearly(tmp_path: Path) -> None:
    # A directory is not a database file: every connection attempt fails.
    settings = load_settings({}, app_env="testing", database_url=f"sqlite:///{tmp_path}", jwt_secret_key=TEST_SECRET)
    result = cli(create_app(settings), "users", "list")
    assert result.exit_code == 1
    assert "database unavailable (OperationalError)" in result.stderr
    assert "Traceback" not in result.output


def test_openapi_write_command_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "JWT_SECRET_KEY": TEST_SECRET,
    }
    env.pop("REDIS_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "openapi", "write", str(target)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(target.read_text())
    assert document["openapi"].startswith("3.")
    assert {"/readyz", "/healthz", "/api/v1/posts/get_my_posts"} <= set(document["paths"])
