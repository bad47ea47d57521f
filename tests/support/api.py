"""What tests share about the API: its paths, the test credentials, and request helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

SIGN_UP = "/api/v1/auth/sign_up"
SIGN_IN = "/api/v1/auth/sign_in"
REFRESH = "/api/v1/auth/refresh_token"
SIGN_OUT = "/api/v1/auth/sign_out"
CHANGE_PASSWORD = "/api/v1/auth/change_password"
DELETE_ACCOUNT = "/api/v1/auth/account"
ADD = "/api/v1/posts/add-post"
LIST = "/api/v1/posts/get_my_posts"
DELETE = "/api/v1/posts/delete_my_post"
TEST_SECRET = "test-signing-key-that-is-at-least-32-bytes-long"
PASSWORD = "correct horse battery"

SignUp = Callable[..., dict[str, Any]]
# The `make_client` fixture: a cookie-less client of an app built with setting overrides.
MakeClient = Callable[..., FlaskClient]
"""The `sign_up` fixture: create an account, get the sign-up body (user and tokens)."""


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


def id_and_token(sign_up: SignUp, email: str = "ada@example.com") -> tuple[str, str]:
    """Sign up `email`; the new user's id and access token."""
    user = sign_up(email)
    return user["id"], user["access_token"]
