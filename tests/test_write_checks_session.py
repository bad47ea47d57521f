"""add-post and delete_my_post check the token's session in their own statement, not in a SELECT before it.

When this process cannot tell from memory whether the token's session generation is current,
the token check leaves it to the write: an INSERT ... SELECT (or a DELETE ... WHERE EXISTS) that
changes nothing once the account's sessions ended. Two apps on one database play two workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from models.tables import PostRow
from tests.support.api import ADD, DELETE, Api, MakeClient, bearer

REVOKED = {"error": "Token has been revoked"}


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Move this process's clock a minute on: what it read of any session is no longer trusted."""
    offset = [0.0]
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + offset[0])

    def advance() -> None:
        offset[0] += 60.0

    return advance


def _posts(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(PostRow)).scalar_one())


def test_a_write_checks_the_session_in_its_own_statement(
    client: FlaskClient, make_client: MakeClient, engine: Engine, statements: list[str], later: Callable[[], None]
) -> None:
    this, other = Api(client), Api(make_client())
    user = this.user()
    token = user["access_token"]
    kept = this.add_post(token, "kept")
    later()
    statements.clear()
    assert client.post(ADD, json={"text": "checked by its insert"}, headers=bearer(token)).status_code == 200
    assert statements == ["INSERT"]  # no SELECT of the session before it

    assert other.sign_out(user["refresh_token"]).status_code == 200  # on the other worker
    later()
    before = _posts(engine)
    refused = client.post(ADD, json={"text": "after the sign-out"}, headers=bearer(token))
    assert (refused.status_code, refused.get_json()) == (401, REVOKED)
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert _posts(engine) == before  # nothing stored
    refused = client.delete(DELETE, query_string={"post_id": kept}, headers=bearer(token))
    assert (refused.status_code, refused.get_json()) == (401, REVOKED)
    assert _posts(engine) == before  # nothing deleted


def test_a_delete_that_finds_nothing_in_an_open_session_is_404(
    client: FlaskClient, statements: list[str], later: Callable[[], None]
) -> None:
    api = Api(client)
    token = api.user()["access_token"]
    post_id = api.add_post(token, "mine")
    later()
    statements.clear()
    assert client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token)).status_code == 200
    assert statements == ["DELETE"]
    later()
    missing = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))
    assert (missing.status_code, missing.get_json()) == (404, {"error": "Post not found"})


def test_a_deleted_accounts_token_writes_nothing(
    client: FlaskClient, make_client: MakeClient, engine: Engine, later: Callable[[], None]
) -> None:
    this, other = Api(client), Api(make_client())
    token = this.user()["access_token"]
    deleted = other.client.delete(
        "/api/v1/auth/account", json={"password": "correct horse battery"}, headers=bearer(token)
    )
    assert deleted.status_code == 200
    later()
    refused = client.post(ADD, json={"text": "orphan"}, headers=bearer(token))
    assert refused.status_code == 401
    assert _posts(engine) == 0
