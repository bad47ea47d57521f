"""What tests share about the API: its paths, the test credentials, and `Api`, the calls through a test client.

`Api` is to this suite what flaskr's `AuthActions` is to flaskr's: one object per test client
(the `api` fixture) that knows each endpoint's path and body, so a test says `api.sign_in(...)`
rather than repeating paths and payloads. Its plain methods answer the response, whatever its
status; `user`, `token` and `add_post` assert success and answer what the test goes on with.
The e2e tests, which talk to a live server with `requests`, share the paths from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

SIGN_UP = "/api/v1/auth/sign_up"
SIGN_IN = "/api/v1/auth/sign_in"
REFRESH = "/api/v1/auth/refresh_token"
SIGN_OUT = "/api/v1/auth/sign_out"
CHANGE_PASSWORD = "/api/v1/auth/change_password"
DELETE_ACCOUNT = "/api/v1/auth/account"
FORGOT_PASSWORD = "/api/v1/auth/forgot_password"
RESET_PASSWORD = "/api/v1/auth/reset_password"
ADD = "/api/v1/posts/add-post"
LIST = "/api/v1/posts/get_my_posts"
DELETE = "/api/v1/posts/delete_my_post"
TEST_SECRET = "test-signing-key-that-is-at-least-32-bytes-long"
PASSWORD = "correct horse battery"
ADA = "ada@example.com"

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


class Api:
    """The API's endpoints called through one test client, each with its path and body shape."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def sign_up(self, email: str = ADA, password: str = PASSWORD, **kwargs: Any) -> TestResponse:
        """POST sign_up with JSON; `kwargs` go to the client (headers, environ_base, ...)."""
        return self.client.post(SIGN_UP, json={"email_address": email, "password": password}, **kwargs)

    def sign_in(self, email: str = ADA, password: str = PASSWORD, *, form: bool = False, **kwargs: Any) -> TestResponse:
        """POST sign_in with JSON, or with the OAuth2 password-flow form when `form`."""
        if form:
            return self.client.post(SIGN_IN, data={"username": email, "password": password}, **kwargs)
        return self.client.post(SIGN_IN, json={"email_address": email, "password": password}, **kwargs)

    def refresh(self, refresh_token: str) -> TestResponse:
        """GET refresh_token with the `refresh-token` header."""
        return self.client.get(REFRESH, headers={"refresh-token": refresh_token})

    def sign_out(self, refresh_token: str) -> TestResponse:
        """POST sign_out with the `refresh-token` header."""
        return self.client.post(SIGN_OUT, headers={"refresh-token": refresh_token})

    def change_password(self, token: str, current: str, new: str, **extra: Any) -> TestResponse:
        """POST change_password; `extra` adds body fields (`confirm_password`)."""
        body = {"current_password": current, "new_password": new, **extra}
        return self.client.post(CHANGE_PASSWORD, json=body, headers=bearer(token))

    def delete_account(self, token: str, password: str = PASSWORD) -> TestResponse:
        """DELETE account, confirmed with `password`."""
        return self.client.delete(DELETE_ACCOUNT, json={"password": password}, headers=bearer(token))

    def forgot_password(self, email: str = ADA, **kwargs: Any) -> TestResponse:
        """POST forgot_password for `email`; `kwargs` go to the client."""
        return self.client.post(FORGOT_PASSWORD, json={"email_address": email}, **kwargs)

    def reset_password(self, token: str, new: str, **extra: Any) -> TestResponse:
        """POST reset_password with the mail's token; `extra` adds body fields (`confirm_password`)."""
        return self.client.post(RESET_PASSWORD, json={"token": token, "new_password": new, **extra})

    def add(self, token: str, text: str) -> TestResponse:
        """POST add-post with the token in the Authorization header."""
        return self.client.post(ADD, json={"text": text}, headers=bearer(token))

    def listing(self, token: str, headers: dict[str, str] | None = None, **query: Any) -> TestResponse:
        """GET get_my_posts; `query` becomes the query string (`limit`, `before`), `headers` are added."""
        return self.client.get(LIST, query_string=query, headers={**bearer(token), **(headers or {})})

    def delete(self, token: str, post_id: str) -> TestResponse:
        """DELETE delete_my_post for `post_id`."""
        return self.client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))

    def user(self, email: str = ADA, password: str = PASSWORD) -> dict[str, Any]:
        """Sign up (asserting 200) and answer the body: the user and its tokens."""
        response = self.sign_up(email, password)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def token(self, email: str = ADA) -> str:
        """Sign up `email` and answer its access token."""
        token: str = self.user(email)["access_token"]
        return token

    def add_post(self, token: str, text: str) -> str:
        """Add a post (asserting 200) and answer its id."""
        response = self.add(token, text)
        assert response.status_code == 200, response.get_data(as_text=True)
        post_id: str = response.get_json()["id"]
        return post_id

    def texts(self, token: str) -> list[str]:
        """The texts of the caller's whole listing, newest first (asserting 200)."""
        response = self.listing(token)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [post["text"] for post in response.get_json()]
