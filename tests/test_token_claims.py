"""Tokens signed with the service's own key but with a malformed claim: every one is 401, never 500.

Each case differs from a valid token (accepted: the control test below) in one claim only, and
is sent where access tokens go (header and add-post's body) and where refresh tokens go.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, insert

from app import create_app
from config import load_settings
from models.tables import PostRow, UserRow
from resources import resources
from tests.support.api import ADD, LIST, REFRESH, SIGN_OUT, TEST_SECRET, bearer

NOW = int(time.time())
HUGE = 10**400
UUID = "5bb9ba60-2e5f-42b1-baf4-a9f74329baa0"  # well formed, but not the account's
MISSING = object()

# claim -> value (MISSING: the claim is left out)
MALFORMED: dict[str, tuple[str, Any]] = {
    "exp-numeric-string": ("exp", str(NOW + 600)),
    "exp-float-string": ("exp", f"{NOW + 600}.5"),
    "exp-nan": ("exp", float("nan")),
    "exp-inf": ("exp", float("inf")),
    "exp-minus-inf": ("exp", float("-inf")),
    "exp-huge": ("exp", HUGE),
    "exp-past-year-9999": ("exp", 253402300800),
    "exp-true": ("exp", True),
    "exp-null": ("exp", None),
    "exp-missing": ("exp", MISSING),
    "iat-numeric-string": ("iat", str(NOW)),
    "iat-nan": ("iat", float("nan")),
    "iat-inf": ("iat", float("inf")),
    "iat-minus-inf": ("iat", float("-inf")),
    "iat-huge": ("iat", HUGE),
    "iat-minus-huge": ("iat", -HUGE),
    "iat-negative": ("iat", -1),
    "iat-false": ("iat", False),
    "iat-missing": ("iat", MISSING),
    "nbf-numeric-string": ("nbf", str(NOW)),
    "nbf-nan": ("nbf", float("nan")),
    "nbf-inf": ("nbf", float("inf")),
    "nbf-minus-huge": ("nbf", -HUGE),
    "nbf-true": ("nbf", True),
    "nbf-null": ("nbf", None),
    "sub-int": ("sub", 12345),
    "sub-not-a-uuid": ("sub", "not-a-uuid"),
    "sub-empty": ("sub", ""),
    "sub-list": ("sub", [UUID]),
    "sub-null": ("sub", None),
    "sub-missing": ("sub", MISSING),
    "type-missing": ("type", MISSING),
    "type-other": ("type", "id"),
    "type-int": ("type", 1),
    "type-list": ("type", ["access"]),
    "type-null": ("type", None),
    "gen-string": ("gen", "0"),
    "gen-huge": ("gen", HUGE),
    "gen-negative": ("gen", -1),
    "gen-float": ("gen", 0.0),
    "gen-true": ("gen", True),
    "gen-null": ("gen", None),
    "jti-int": ("jti", 7),
}


def _token(user_id: str, token_type: str, claim: str | None = None, value: Any = MISSING) -> str:
    claims: dict[str, Any] = {"sub": user_id, "iat": NOW, "nbf": NOW, "exp": int(time.time()) + 600, "type": token_type}
    if token_type == "refresh":
        claims["gen"] = 0
    if claim is not None:
        if value is MISSING:
            claims.pop(claim, None)
        else:
            claims[claim] = value
    # Python's JSON writes NaN and Infinity, and PyJWT's decoder reads them back.
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


Send = Callable[[FlaskClient, str], Any]
ACCESS: dict[str, Send] = {
    "get_my_posts": lambda client, token: client.get(LIST, headers=bearer(token)),
    "add-post header": lambda client, token: client.post(ADD, json={"text": "x"}, headers=bearer(token)),
    "add-post body": lambda client, token: client.post(ADD, json={"text": "x", "token": token}),
}
REFRESHING: dict[str, Send] = {
    "refresh_token": lambda client, token: client.get(REFRESH, headers={"refresh-token": token}),
    "sign_out": lambda client, token: client.post(SIGN_OUT, headers={"refresh-token": token}),
}
CASES = [
    pytest.param(token_type, endpoint, case, id=f"{endpoint}-{case}")
    for token_type, endpoints in (("access", ACCESS), ("refresh", REFRESHING))
    for endpoint in endpoints
    for case in MALFORMED
]


@pytest.fixture(scope="module")
def shared_app(schema_url: str) -> Iterator[Flask]:
    """One app for the module's few hundred requests (no test here changes it); tables emptied after."""
    application = create_app(
        load_settings(
            {}, app_env="testing", database_url=schema_url, jwt_secret_key=TEST_SECRET, cache_backend="simple"
        )
    )
    yield application
    with resources(application).engine.begin() as connection:
        connection.execute(delete(PostRow))
        connection.execute(delete(UserRow))
    resources(application).engine.dispose()


def _new_account(app: Flask) -> str:
    """An account in the database (no password hashing: no one signs in with it), its id as a string."""
    now = datetime.now(UTC)
    user = uuid.uuid4()
    with resources(app).engine.begin() as connection:
        connection.execute(
            insert(UserRow).values(
                id=user, email_address=f"{user.hex}@example.com", password_hash="-", created_at=now, updated_at=now
            )
        )
    return str(user)


@pytest.fixture(scope="module")
def user_id(shared_app: Flask) -> str:
    """A real account, so a token wrongly accepted shows as a 200, not as some later failure."""
    return _new_account(shared_app)


@pytest.fixture
def client(shared_app: Flask) -> FlaskClient:
    """A client of the module's app."""
    return shared_app.test_client()


@pytest.mark.parametrize(("token_type", "endpoint", "case"), CASES)
def test_a_malformed_claim_is_401(client: FlaskClient, user_id: str, token_type: str, endpoint: str, case: str) -> None:
    send = {**ACCESS, **REFRESHING}[endpoint]
    claim, value = MALFORMED[case]
    response = send(client, _token(user_id, token_type, claim, value))
    assert response.status_code == 401, (response.status_code, response.get_json())
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["error"], str)


@pytest.mark.parametrize(
    ("token_type", "endpoint"),
    [("access", endpoint) for endpoint in ACCESS] + [("refresh", endpoint) for endpoint in REFRESHING],
)
def test_the_same_token_with_every_claim_well_formed_is_accepted(
    shared_app: Flask, client: FlaskClient, token_type: str, endpoint: str
) -> None:
    # The cases above differ from this one only in the claim under test. An account of its own:
    # a sign-out here must not revoke the tokens of the account the other cases use.
    response = {**ACCESS, **REFRESHING}[endpoint](client, _token(_new_account(shared_app), token_type))
    assert response.status_code == 200, response.get_json()
