"""Sign-up, sign-in and refresh, against the contract, on both databases."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from blueprints.auth.devices import COOKIE_NAME, COOKIE_PATH
from tests.support.api import LIST, PASSWORD, REFRESH, SIGN_IN, SIGN_UP, TEST_SECRET, SignUp, bearer

USER_FIELDS = {"id", "email_address", "created_at", "updated_at", "access_token", "refresh_token", "token_type"}


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    return claims


def test_sign_up_returns_user_and_tokens(client: FlaskClient, statements: list[str]) -> None:
    response = client.post(SIGN_UP, json={"email_address": "Ada@Example.COM", "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["email_address"] == "ada@example.com"
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["created_at"].endswith("+00:00")
    assert body["token_type"] == "bearer"
    assert response.headers["Cache-Control"] == "no-store"
    assert _claims(body["access_token"])["type"] == "access"
    assert _claims(body["refresh_token"])["type"] == "refresh"
    assert _claims(body["access_token"])["sub"] == body["id"]
    assert "password" not in response.get_data(as_text=True)
    assert statements == ["INSERT"]


def test_sign_up_accepts_email_alias_and_confirm_password(client: FlaskClient) -> None:
    response = client.post(
        SIGN_UP, json={"email": "bob@example.com", "password": PASSWORD, "confirm_password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.get_json()["email_address"] == "bob@example.com"


def test_sign_up_rejects_different_confirm_password(client: FlaskClient) -> None:
    response = client.post(
        SIGN_UP, json={"email_address": "bob@example.com", "password": PASSWORD, "confirm_password": "other pass"}
    )
    assert response.status_code == 400
    assert "error" in response.get_json()
    # Nothing was stored: the same email can still sign up.
    assert client.post(SIGN_UP, json={"email_address": "bob@example.com", "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("second", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@example.com"])
def test_duplicate_email_is_refused_whatever_its_case(client: FlaskClient, sign_up: SignUp, second: str) -> None:
    sign_up("ada@example.com")
    response = client.post(SIGN_UP, json={"email_address": second, "password": PASSWORD})
    assert response.status_code == 400
    assert response.get_json() == {"error": "Email already exists"}


def test_unknown_fields_are_ignored_not_stored(client: FlaskClient) -> None:
    chosen_id = "5bb9ba60-2e5f-42b1-baf4-a9f74329baa0"
    response = client.post(
        SIGN_UP,
        json={"email_address": "eve@example.com", "password": PASSWORD, "id": chosen_id, "is_admin": True},
    )
    assert response.status_code == 200
    assert response.get_json()["id"] != chosen_id


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"password": PASSWORD}, "body.email_address: Missing data for required field."),
        ({"email_address": "ada@example.com"}, "body.password: Missing data for required field."),
        ({"email_address": "not-an-email", "password": PASSWORD}, "body.email_address: Not a valid email address"),
        ({"email_address": "a@b", "password": PASSWORD}, "body.email_address: Not a valid email address"),
        ({"email_address": "ada@example.com", "password": "x" * 7}, "body.password: Length must be between 8 and 256"),
        ({"email_address": "ada@example.com", "password": "x" * 257}, "body.password: Length must be between"),
        ({"email_address": 12, "password": PASSWORD}, "body.email_address: Not a valid string."),
        (
            {"email_address": "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 62, "password": PASSWORD},
            "body.email_address:",
        ),
    ],
)
def test_sign_up_validation_errors(client: FlaskClient, payload: dict[str, Any], expected: str) -> None:
    response = client.post(SIGN_UP, json=payload)
    assert response.status_code == 422
    body = response.get_json()
    assert body["status_code"] == 422
    assert body["error"] == "Validation error"
    assert any(line.startswith(expected) for line in body["extra"]), body["extra"]


def test_password_bounds_are_inclusive(client: FlaskClient) -> None:
    assert client.post(SIGN_UP, json={"email_address": "a@example.com", "password": "x" * 8}).status_code == 200
    assert client.post(SIGN_UP, json={"email_address": "b@example.com", "password": "y" * 256}).status_code == 200


def test_email_of_254_characters_is_accepted(client: FlaskClient) -> None:
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    response = client.post(SIGN_UP, json={"email_address": email, "password": PASSWORD})
    assert response.status_code == 200


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "null"])
def test_sign_up_body_must_be_a_json_object(client: FlaskClient, body: str) -> None:
    response = client.post(SIGN_UP, data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["error"] == "Validation error"


def test_sign_in_with_form_and_json(client: FlaskClient, sign_up: SignUp, statements: list[str]) -> None:
    user = sign_up("ada@example.com")
    client.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)  # a client that never signed in here
    statements.clear()
    form = client.post(SIGN_IN, data={"username": "ADA@example.com", "password": PASSWORD, "grant_type": "password"})
    assert form.status_code == 200
    # The account's turn (a write that changes nothing: attempts take turns), then its credentials.
    assert statements == ["UPDATE", "SELECT"]
    assert set(form.get_json()) == USER_FIELDS
    assert form.get_json()["id"] == user["id"]
    assert form.headers["Cache-Control"] == "no-store"
    for key in ("email_address", "email"):
        response = client.post(SIGN_IN, json={key: "ada@example.com", "password": PASSWORD})
        assert response.status_code == 200
        assert response.get_json()["id"] == user["id"]


def test_a_device_cookie_costs_one_select_more(client: FlaskClient, sign_up: SignUp, statements: list[str]) -> None:
    sign_up("ada@example.com")  # sets the device cookie
    statements.clear()
    response = client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 200
    # The account's turn, then the cookie is checked against the account's id and password
    # before the limits apply, then the credentials.
    assert statements == ["UPDATE", "SELECT", "SELECT"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "ada@example.com", "password": "wrong password"},
        {"username": "nobody@example.com", "password": PASSWORD},
        {"username": "not an email", "password": PASSWORD},
    ],
)
def test_sign_in_failures_are_identical(client: FlaskClient, sign_up: SignUp, credentials: dict[str, str]) -> None:
    sign_up("ada@example.com")
    response = client.post(SIGN_IN, data=credentials)
    assert response.status_code == 401
    assert response.get_json() == {"error": "Incorrect email or password"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": {"username": "ada@example.com"}}, "body.password: Missing data for required field."),
        ({"json": {"password": PASSWORD}}, "body.email_address: Missing data for required field."),
        ({"data": "{oops", "content_type": "application/json"}, "body: Invalid JSON body."),
        ({"json": [1]}, "body: Invalid input type."),
    ],
)
def test_sign_in_validation_errors(client: FlaskClient, kwargs: dict[str, Any], expected: str) -> None:
    response = client.post(SIGN_IN, **kwargs)
    assert response.status_code == 422
    assert expected in response.get_json()["extra"]


def test_refresh_gives_a_new_access_token(client: FlaskClient, sign_up: SignUp, statements: list[str]) -> None:
    user = sign_up()
    statements.clear()
    response = client.get(REFRESH, headers={"refresh-token": user["refresh_token"]})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "bearer"
    assert response.headers["Cache-Control"] == "no-store"
    assert statements == ["SELECT"]
    assert client.get(LIST, headers=bearer(body["access_token"])).status_code == 200


def test_refresh_for_a_deleted_user_is_refused(client: FlaskClient, sign_up: SignUp, app: Any) -> None:
    from sqlalchemy import delete

    from models.tables import UserRow
    from resources import resources

    user = sign_up()
    with resources(app).engine.begin() as connection:
        connection.execute(delete(UserRow))
    response = client.get(REFRESH, headers={"refresh-token": user["refresh_token"]})
    assert response.status_code == 401


def test_token_types_never_stand_in_for_each_other(client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    assert client.get(REFRESH, headers={"refresh-token": user["access_token"]}).status_code == 401
    response = client.get(LIST, headers=bearer(user["refresh_token"]))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_missing_tokens_are_401_not_authenticated(client: FlaskClient) -> None:
    for response in (client.get(REFRESH), client.get(LIST)):
        assert response.status_code == 401
        assert response.get_json() == {"error": "Not authenticated"}
        assert response.headers["WWW-Authenticate"] == "Bearer"


def _forge(claims: dict[str, Any], key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _valid_claims(user_id: str, token_type: str = "access") -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user_id, "iat": now, "nbf": now, "exp": now + 600, "type": token_type}


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda uid: "not-a-jwt", id="malformed"),
        pytest.param(lambda uid: _forge(_valid_claims(uid), key="another-key-" + "k" * 40), id="wrong-key"),
        pytest.param(lambda uid: _forge(_valid_claims(uid), algorithm="HS512"), id="hs512"),
        pytest.param(
            lambda uid: jwt.encode(_valid_claims(uid), "", algorithm="none"),
            id="alg-none",
        ),
        pytest.param(lambda uid: _forge({**_valid_claims(uid), "exp": int(time.time()) - 10}), id="expired"),
        pytest.param(lambda uid: _forge({k: v for k, v in _valid_claims(uid).items() if k != "exp"}), id="no-exp"),
        pytest.param(lambda uid: _forge({k: v for k, v in _valid_claims(uid).items() if k != "type"}), id="no-type"),
        pytest.param(lambda uid: _forge({**_valid_claims(uid), "nbf": int(time.time()) + 600}), id="future-nbf"),
        pytest.param(lambda uid: _forge({**_valid_claims(uid), "sub": "not-a-uuid"}), id="bad-sub"),
        pytest.param(lambda uid: _forge(_valid_claims(uid))[:-4] + "AAAA", id="tampered-signature"),
    ],
)
def test_bad_access_tokens_are_401(client: FlaskClient, sign_up: SignUp, make_token: Any) -> None:
    user = sign_up()
    response = client.get(LIST, headers=bearer(make_token(user["id"])))
    assert response.status_code == 401
    assert "error" in response.get_json()
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_correctly_forged_token_shape_is_accepted(client: FlaskClient, sign_up: SignUp) -> None:
    # The negative cases above differ from this one only in the property under test.
    user = sign_up()
    assert client.get(LIST, headers=bearer(_forge(_valid_claims(user["id"])))).status_code == 200


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "Token abc"])
def test_malformed_authorization_header_is_401(client: FlaskClient, header: str) -> None:
    response = client.get(LIST, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_in_query_string_is_ignored(client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    response = client.get(f"{LIST}?token={user['access_token']}&access_token={user['access_token']}")
    assert response.status_code == 401


def test_database_errors_never_quote_stored_values(app: Any) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from models.tables import UserRow
    from resources import resources

    now = datetime.now(UTC)
    row = {"email_address": "dup@example.com", "password_hash": "SECRET-HASH", "created_at": now, "updated_at": now}
    with pytest.raises(IntegrityError) as raised, resources(app).engine.begin() as connection:
        connection.execute(insert(UserRow).values(id=uuid.uuid4(), **row))
        connection.execute(insert(UserRow).values(id=uuid.uuid4(), **row))
    # The statement's parameters are hidden (MariaDB's own message still names the duplicate key).
    assert "SECRET-HASH" not in str(raised.value)


def test_an_accepted_token_still_expires(client: FlaskClient, sign_up: SignUp) -> None:
    # Nothing remembers a verified token past its expiry: it is checked on every use.
    user = sign_up()
    expires_at = int(time.time()) + 3
    token = _forge({**_valid_claims(user["id"]), "exp": expires_at})
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, expires_at + 1.1 - time.time()))
    response = client.get(LIST, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json() == {"error": "Token has expired"}


def test_an_accepted_token_is_refused_under_another_key(app: Any, sign_up: SignUp) -> None:
    # A key rotation invalidates old tokens at once.
    user = sign_up()
    client = app.test_client()
    assert client.get(LIST, headers=bearer(user["access_token"])).status_code == 200
    app.config["JWT_SECRET_KEY"] = "a-rotated-signing-key-that-is-at-least-32-bytes"
    response = client.get(LIST, headers=bearer(user["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == {"error": "Invalid token"}
