"""Hostile post text and emails: SQL-injection strings and control characters are data, stored literally."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from models.tables import PostRow, UserRow
from resources import resources
from tests.support.api import ADD, DELETE, LIST, PASSWORD, SignUp, bearer

# Every C0 control (NUL included), DEL, every C1 control, and the JSON-legal but JavaScript-hostile
# line and paragraph separators.
CONTROL_CHARACTERS = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0))) + "\u2028\u2029"
HOSTILE_TEXTS = [
    pytest.param(CONTROL_CHARACTERS, id="all-control-characters"),
    pytest.param("\x00", id="only-nul"),
    pytest.param("before\x00after", id="nul-inside"),
    pytest.param("trailing nul\x00", id="nul-at-end"),
    pytest.param("'; DROP TABLE posts; --", id="drop-table"),
    pytest.param("' OR '1'='1", id="or-true"),
    pytest.param("\\'; SELECT SLEEP(10); -- \\", id="backslash-escape-sleep"),
    pytest.param("\\0 \\n \\r \\Z \\% \\_ %s %(text)s ?", id="mysql-escapes-and-placeholders"),
    pytest.param("0x27 UNION SELECT password_hash FROM users", id="union-select"),
    pytest.param("x" * 200 + "\x00" + "\N{PILE OF POO}" * 100, id="nul-between-ascii-and-astral"),
]


def _stored_texts(app: Flask) -> list[str]:
    with resources(app).engine.connect() as connection:
        return list(connection.scalars(select(PostRow.text).order_by(PostRow.seq)))


@pytest.fixture
def token(sign_up: SignUp) -> str:
    access: str = sign_up("ada@example.com")["access_token"]
    return access


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_is_stored_and_returned_byte_for_byte(
    app: Flask, client: FlaskClient, token: str, text: str
) -> None:
    response = client.post(ADD, json={"text": text}, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    # The column itself holds the exact text: no truncation at NUL, no escaping, no normalization.
    assert [stored.encode() for stored in _stored_texts(app)] == [text.encode()]
    [post] = client.get(LIST, headers=bearer(token)).get_json()
    assert post["text"].encode() == text.encode()
    assert post["id"] == response.get_json()["id"]


@pytest.mark.parametrize(
    "email",
    ["' OR '1'='1'@example.com", "admin'--@example.com", "a@example.com' OR 1=1 --", "a\x00@example.com"],
)
def test_injection_in_the_email_never_signs_anyone_in(client: FlaskClient, sign_up: SignUp, email: str) -> None:
    sign_up("victim@example.com")
    response = client.post("/api/v1/auth/sign_in", json={"email_address": email, "password": PASSWORD})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Incorrect email or password"}


def test_an_injected_email_that_is_a_valid_address_is_just_another_account(app: Flask, sign_up: SignUp) -> None:
    # RFC 5322 allows quotes and hyphens in the local part: the text is data like any other.
    body = sign_up("o'reilly--@example.com")
    assert body["email_address"] == "o'reilly--@example.com"
    with resources(app).engine.connect() as connection:
        assert list(connection.scalars(select(UserRow.email_address))) == ["o'reilly--@example.com"]


@pytest.mark.parametrize("post_id", ["1 OR 1=1", "' OR ''='", "00000000-0000-0000-0000-000000000000'--", "%", "*"])
def test_injection_in_the_post_id_is_422_and_deletes_nothing(
    app: Flask, client: FlaskClient, token: str, post_id: str
) -> None:
    client.post(ADD, json={"text": "keep me"}, headers=bearer(token))
    response = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["extra"][0].startswith("query.post_id:")
    assert _stored_texts(app) == ["keep me"]
