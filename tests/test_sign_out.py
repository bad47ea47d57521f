"""Sign-out: every refresh token issued before it stops working; later sign-ins work; on both databases."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from models.tables import UserRow
from resources import resources
from tests.support.api import PASSWORD, TEST_SECRET, SignUp, bearer

SIGN_IN = "/api/v1/auth/sign_in"
SIGN_OUT = "/api/v1/auth/sign_out"
REFRESH = "/api/v1/auth/refresh_token"
LIST = "/api/v1/posts/get_my_posts"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _refresh(client: FlaskClient, token: str) -> int:
    return client.get(REFRESH, headers={"refresh-token": token}).status_code


def _sign_out(client: FlaskClient, token: str) -> Any:
    return client.post(SIGN_OUT, headers={"refresh-token": token})


def _generation(app: Flask, user_id: str) -> int:
    with resources(app).engine.connect() as connection:
        value: int = connection.execute(
            select(UserRow.session_generation).where(UserRow.id == uuid.UUID(user_id))
        ).scalar_one()
    return value


def _refresh_token(user_id: str, generation: int | None) -> str:
    """A refresh token as the service issues it, in a chosen session generation (None: no claim)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "type": "refresh",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    if generation is not None:
        claims["gen"] = generation
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def test_sign_out_revokes_every_earlier_refresh_token(client: FlaskClient, sign_up: SignUp) -> None:
    first = sign_up()
    second = client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}).get_json()
    assert _refresh(client, first["refresh_token"]) == 200

    response = _sign_out(client, second["refresh_token"])

    assert response.status_code == 200
    assert response.get_json() == {"status": "signed out"}
    assert response.headers["Cache-Control"] == "no-store"
    for token in (first["refresh_token"], second["refresh_token"]):
        refused = client.get(REFRESH, headers={"refresh-token": token})
        assert refused.status_code == 401
        assert refused.get_json() == {"error": "Token has been revoked"}
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    # Access tokens issued before it end too (docs/api.md, "Sessions").
    for token in (first["access_token"], second["access_token"]):
        refused = client.get(LIST, headers=bearer(token))
        assert refused.status_code == 401
        assert refused.get_json() == {"error": "Token has been revoked"}


def test_sign_in_right_after_sign_out_works(client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    assert _sign_out(client, user["refresh_token"]).status_code == 200
    again = client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD}).get_json()
    assert _refresh(client, again["refresh_token"]) == 200
    assert _sign_out(client, again["refresh_token"]).status_code == 200
    assert _refresh(client, again["refresh_token"]) == 401


def test_only_the_current_generation_refreshes(app: Flask, client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    assert _generation(app, user["id"]) == 0
    assert _refresh(client, _refresh_token(user["id"], None)) == 200  # no claim: generation 0
    assert _sign_out(client, user["refresh_token"]).status_code == 200
    assert _generation(app, user["id"]) == 1

    # Whatever the clock says: older generations are refused, a future one too (never issued).
    assert _refresh(client, _refresh_token(user["id"], 0)) == 401
    assert _refresh(client, _refresh_token(user["id"], None)) == 401
    assert _refresh(client, _refresh_token(user["id"], 2)) == 401
    assert _refresh(client, _refresh_token(user["id"], 1)) == 200


def test_sign_out_is_one_ending_and_refresh_stays_one_select(
    client: FlaskClient, sign_up: SignUp, statements: list[str]
) -> None:
    user = sign_up()
    statements.clear()
    assert _sign_out(client, user["refresh_token"]).status_code == 200
    # The account's UPDATE, then its entry in the feed of endings: the feed's next seq, the row.
    assert statements == ["UPDATE", "UPDATE", "SELECT", "INSERT"]
    statements.clear()
    assert _refresh(client, user["refresh_token"]) == 401
    assert statements == ["SELECT"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Not authenticated"),
        ({"refresh-token": "not-a-jwt"}, "Invalid token"),
        ({"refresh-token": "ACCESS"}, "Expected a refresh token"),
    ],
)
def test_sign_out_without_a_valid_refresh_token_is_401(
    client: FlaskClient, sign_up: SignUp, headers: dict[str, str], message: str
) -> None:
    user = sign_up()
    if headers.get("refresh-token") == "ACCESS":
        headers = {"refresh-token": user["access_token"]}
    response = client.post(SIGN_OUT, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": message}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert _refresh(client, user["refresh_token"]) == 200  # nothing was revoked


def test_sign_out_with_a_revoked_or_orphaned_token_is_401(app: Flask, client: FlaskClient, sign_up: SignUp) -> None:
    user = sign_up()
    assert _sign_out(client, user["refresh_token"]).status_code == 200
    generation = _generation(app, user["id"])
    response = _sign_out(client, user["refresh_token"])
    assert response.status_code == 401
    assert response.get_json() == {"error": "Token has been revoked"}
    assert _generation(app, user["id"]) == generation  # a revoked token moves nothing

    other = sign_up("bob@example.com")
    with resources(app).engine.begin() as connection:
        connection.execute(delete(UserRow).where(UserRow.id == uuid.UUID(other["id"])))
    assert _sign_out(client, other["refresh_token"]).status_code == 401


def test_sign_out_of_one_user_leaves_others_signed_in(client: FlaskClient, sign_up: SignUp) -> None:
    ada = sign_up()
    bob = sign_up("bob@example.com")
    assert _sign_out(client, ada["refresh_token"]).status_code == 200
    assert _refresh(client, bob["refresh_token"]) == 200
