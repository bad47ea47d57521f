"""Account self-service: changing the password and deleting the account, on both databases."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from models.tables import PostRow, UserRow
from resources import resources
from tests.support.api import (
    CHANGE_PASSWORD,
    DELETE_ACCOUNT,
    LIST,
    PASSWORD,
    Api,
    SignUp,
    bearer,
)

NEW_PASSWORD = "a brand new passphrase"
WRONG = "not my password"
TOO_MANY = {"error": "Too many attempts, try again later"}


def _change(api: Api, token: str, current: str = PASSWORD, new: str = NEW_PASSWORD, **extra: Any) -> Any:
    return api.change_password(token, current, new, **extra)


def _count(app: Flask, column: Any, **where: Any) -> int:
    with resources(app).engine.connect() as connection:
        statement = select(func.count(column))
        for name, value in where.items():
            statement = statement.where(getattr(column.table.c, name) == value)
        return int(connection.execute(statement).scalar_one())


def test_a_password_change_ends_every_other_session(client: FlaskClient, api: Api, sign_up: SignUp) -> None:
    first = sign_up()
    second = api.sign_in(password=PASSWORD).get_json()

    response = _change(api, second["access_token"], confirm_password=NEW_PASSWORD)

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "password changed"
    assert body["token_type"] == "bearer"
    assert response.headers["Cache-Control"] == "no-store"
    # The old password is refused, the new one works.
    assert api.sign_in(password=PASSWORD).status_code == 401
    assert api.sign_in(password=NEW_PASSWORD).status_code == 200
    # Every token issued before the change is refused, the caller's own included ...
    for old in (first, second):
        refused = api.listing(old["access_token"])
        assert (refused.status_code, refused.get_json()) == (401, {"error": "Token has been revoked"})
        assert api.refresh(old["refresh_token"]).status_code == 401
    # ... and the fresh pair opens the only session left.
    assert api.listing(body["access_token"]).status_code == 200
    assert api.refresh(body["refresh_token"]).status_code == 200


def test_a_wrong_current_password_is_401_and_changes_nothing(client: FlaskClient, api: Api, sign_up: SignUp) -> None:
    user = sign_up()
    response = _change(api, user["access_token"], current=WRONG)
    assert response.status_code == 401
    assert response.get_json() == {"error": "Incorrect email or password"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert api.sign_in(password=PASSWORD).status_code == 200
    assert api.listing(user["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("extra", "status", "expected"),
    [
        ({"new_password": "short"}, 422, "body.new_password: Length must be between 8 and 256."),
        ({"new_password": "x" * 257}, 422, "body.new_password: Length must be between 8 and 256."),
        ({"new_password": None}, 422, "body.new_password: Field may not be null."),
        ({"current_password": ""}, 422, "body.current_password: Length must be between 1 and 256."),
        ({"confirm_password": "something else"}, 400, None),
    ],
)
def test_a_new_password_outside_the_rules_is_refused(
    client: FlaskClient, api: Api, sign_up: SignUp, extra: dict[str, Any], status: int, expected: str | None
) -> None:
    user = sign_up()
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, **extra}
    response = client.post(CHANGE_PASSWORD, json=body, headers=bearer(user["access_token"]))
    assert response.status_code == status, response.get_json()
    if expected is not None:
        assert expected in response.get_json()["extra"]
    else:
        assert response.get_json() == {"error": "confirm_password does not match password"}
    assert api.sign_in(password=PASSWORD).status_code == 200


def test_wrong_current_passwords_count_toward_the_sign_in_limit(client: FlaskClient, api: Api, sign_up: SignUp) -> None:
    # Default limit: 5 failures per 15 minutes per account, shared with sign-in.
    user = sign_up()
    for _ in range(3):
        assert _change(api, user["access_token"], current=WRONG).status_code == 401
    for _ in range(2):
        assert api.sign_in(password=WRONG).status_code == 401
    locked = _change(api, user["access_token"])
    assert (locked.status_code, locked.get_json()) == (429, TOO_MANY)
    assert int(locked.headers["Retry-After"]) >= 1
    assert api.sign_in(password=PASSWORD).status_code == 429
    assert api.delete_account(user["access_token"]).status_code == 429


def test_deleting_the_account_removes_it_its_posts_and_its_tokens(
    app: Flask, client: FlaskClient, api: Api, sign_up: SignUp
) -> None:
    ada, bob = sign_up("ada@example.com"), sign_up("bob@example.com")
    for token in (ada["access_token"], bob["access_token"]):
        assert api.add(token, "mine").status_code == 200
    assert [p["text"] for p in api.listing(ada["access_token"]).get_json()] == ["mine"]

    response = api.delete_account(ada["access_token"])

    assert (response.status_code, response.get_json()) == (200, {"status": "account deleted"})
    ada_id = uuid.UUID(ada["id"])
    assert _count(app, UserRow.id, id=ada_id) == 0
    assert _count(app, PostRow.seq, user_id=ada_id) == 0
    assert _count(app, PostRow.seq) == 1  # bob's
    # An old token is refused, not answered with an empty (or cached) list.
    for path in (LIST,):
        refused = client.get(path, headers=bearer(ada["access_token"]))
        assert (refused.status_code, refused.get_json()) == (401, {"error": "Token has been revoked"})
    assert api.add(ada["access_token"], "ghost").status_code == 401
    assert api.refresh(ada["refresh_token"]).status_code == 401
    assert api.sign_in(password=PASSWORD).status_code == 401
    # The email is free again, and the new account starts empty.
    again = sign_up("ada@example.com")
    assert again["id"] != ada["id"]
    assert api.listing(again["access_token"]).get_json() == []
    assert api.listing(bob["access_token"]).status_code == 200


def test_a_wrong_password_does_not_delete(app: Flask, api: Api, sign_up: SignUp) -> None:
    user = sign_up()
    response = api.delete_account(user["access_token"], password=WRONG)
    assert (response.status_code, response.get_json()) == (401, {"error": "Incorrect email or password"})
    assert _count(app, UserRow.id) == 1
    assert api.listing(user["access_token"]).status_code == 200


def _no_token(client: FlaskClient, _user: dict[str, Any], method: str, path: str, body: dict[str, Any]) -> Any:
    return client.open(path, method=method, json=body)


def _refresh_token(client: FlaskClient, user: dict[str, Any], method: str, path: str, body: dict[str, Any]) -> Any:
    return client.open(path, method=method, json=body, headers=bearer(user["refresh_token"]))


def _signed_out(client: FlaskClient, user: dict[str, Any], method: str, path: str, body: dict[str, Any]) -> Any:
    assert Api(client).sign_out(user["refresh_token"]).status_code == 200
    return client.open(path, method=method, json=body, headers=bearer(user["access_token"]))


@pytest.mark.parametrize("attempt", [_no_token, _refresh_token, _signed_out])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", CHANGE_PASSWORD, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("DELETE", DELETE_ACCOUNT, {"password": PASSWORD}),
    ],
)
def test_both_need_a_valid_access_token(
    app: Flask,
    client: FlaskClient,
    api: Api,
    sign_up: SignUp,
    attempt: Any,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    user = sign_up()
    response = attempt(client, user, method, path, body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert _count(app, UserRow.id) == 1
    assert api.sign_in(password=PASSWORD).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("POST", CHANGE_PASSWORD), ("DELETE", DELETE_ACCOUNT)])
def test_bodies_over_one_mebibyte_are_413(
    app: Flask, client: FlaskClient, sign_up: SignUp, method: str, path: str
) -> None:
    user = sign_up()
    body = json.dumps({"password": PASSWORD, "current_password": PASSWORD, "padding": "x" * (1024 * 1024)})
    response = client.open(
        path, method=method, data=body, content_type="application/json", headers=bearer(user["access_token"])
    )
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert _count(app, UserRow.id) == 1


def test_a_post_for_a_user_deleted_behind_the_service_is_401_not_500(app: Flask, api: Api, sign_up: SignUp) -> None:
    # The account disappears without the service hearing of it (another host whose cache
    # write was lost): the cut-off cached here still says "valid", the foreign key refuses.
    user = sign_up()
    with resources(app).engine.begin() as connection:
        connection.execute(delete(UserRow))
    response = api.add(user["access_token"], "orphan?")
    assert (response.status_code, response.get_json()) == (401, {"error": "User no longer exists"})
    assert _count(app, PostRow.seq) == 0


def test_a_cached_listing_still_costs_no_statement(api: Api, sign_up: SignUp, statements: list[str]) -> None:
    # The revocation check reads the cut-off with the listing's version: sign-up taught it to the cache.
    user = sign_up()
    assert api.add(user["access_token"], "one").status_code == 200
    statements.clear()
    api.listing(user["access_token"])
    api.listing(user["access_token"])
    assert statements == ["SELECT"]  # the first listing's query; the second is a hit


def test_sign_up_then_change_then_sign_up_elsewhere_keeps_other_accounts(
    client: FlaskClient, api: Api, sign_up: SignUp
) -> None:
    ada, bob = sign_up("ada@example.com"), sign_up("bob@example.com")
    assert _change(api, ada["access_token"]).status_code == 200
    assert api.listing(bob["access_token"]).status_code == 200
    assert api.sign_up("cy@example.com").status_code == 200
