"""Hypothesis property tests: email, password and post-text validation over inputs no example list covers."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.tables import PostRow, UserRow
from resources import resources
from services.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from services.emails import MAX_EMAIL_LENGTH, InvalidEmailError, normalize_email
from tests.support.api import ADD, DELETE, LIST, SIGN_UP, SignUp, bearer

# Bounded and derandomized: the same examples every run, a few seconds per test, no example
# database written to the working tree. No deadline: the machines are shared and noisy.
PURE = settings(max_examples=300, deadline=None, derandomize=True, database=None)
# The client-driven tests reuse one app (and database) across examples: each example cleans up
# after itself, so the function-scoped fixtures are safe to share and the health check is off.
THROUGH_THE_APP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Any Unicode scalar value (surrogates cannot be encoded as UTF-8, so JSON cannot carry them),
# which includes NUL and every other control character and the astral planes.
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=300)
astral_heavy = st.text(alphabet=st.characters(min_codepoint=0x10000, exclude_categories=["Cs"]), min_size=1)
not_a_string = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


def _count(app: Flask, column: Any) -> int:
    with resources(app).engine.connect() as connection:
        return int(connection.scalar(select(func.count(column))) or 0)


@PURE
@given(st.emails())
def test_valid_emails_normalize_to_one_lowercase_idempotent_form(email: str) -> None:
    try:
        normalized = normalize_email(email)
    except InvalidEmailError:
        # Hypothesis' generator follows RFC 5321; the validator also refuses special-use and
        # over-long forms. Refusal is fine: only a clean InvalidEmailError may come out.
        return
    assert normalized == normalized.lower()
    assert len(normalized) <= MAX_EMAIL_LENGTH
    assert normalize_email(normalized) == normalized
    assert normalize_email(email.swapcase()) == normalized  # case never makes a second account


@PURE
@given(st.text(max_size=400))
def test_any_text_is_either_a_normalized_email_or_an_invalid_email_error(text: str) -> None:
    try:
        normalized = normalize_email(text)
    except InvalidEmailError:
        return
    assert "@" in normalized
    assert normalized == normalized.lower()
    assert len(normalized) <= MAX_EMAIL_LENGTH


@THROUGH_THE_APP
@given(email=st.one_of(st.emails(), st.text(max_size=300), not_a_string))
def test_sign_up_judges_emails_as_normalize_email_does(app: Flask, client: FlaskClient, email: Any) -> None:
    # A too-short password makes every request a 422 without hashing or storing anything;
    # the email's own verdict is still reported beside it.
    response = client.post(SIGN_UP, json={"email_address": email, "password": "short"})
    assert response.status_code == 422
    email_lines = [line for line in response.get_json()["extra"] if line.startswith("body.email_address:")]
    try:
        accepted = isinstance(email, str) and bool(normalize_email(email))
    except InvalidEmailError:
        accepted = False
    assert (email_lines == []) == accepted, (email, email_lines)
    assert _count(app, UserRow.id) == 0


@THROUGH_THE_APP
@given(password=st.one_of(st.text(max_size=MAX_PASSWORD_LENGTH + 40), astral_heavy, not_a_string))
def test_passwords_are_accepted_exactly_from_8_to_256_characters(
    app: Flask, client: FlaskClient, password: Any
) -> None:
    # A differing confirm_password stops a valid request (400) before the hash: nothing is stored.
    confirm = f"{password}!" if isinstance(password, str) else "x"
    body = {"email_address": "ada@example.com", "password": password, "confirm_password": confirm}
    response = client.post(SIGN_UP, json=body)
    valid = isinstance(password, str) and MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    if valid:
        assert response.status_code == 400, (password, response.get_json())
    else:
        assert response.status_code == 422, (password, response.get_json())
        assert any(line.startswith("body.password:") for line in response.get_json()["extra"])
    assert _count(app, UserRow.id) == 0


@pytest.fixture
def token(sign_up: SignUp) -> str:
    access: str = sign_up("ada@example.com")["access_token"]
    return access


@THROUGH_THE_APP
@given(text=st.one_of(any_text, astral_heavy))
def test_any_unicode_text_round_trips_byte_for_byte(client: FlaskClient, token: str, text: str) -> None:
    added = client.post(ADD, json={"text": text}, headers=bearer(token))
    assert added.status_code == 200, added.get_json()
    post_id = added.get_json()["id"]
    [post] = client.get(LIST, headers=bearer(token)).get_json()
    assert (post["id"], post["text"].encode()) == (post_id, text.encode())
    deleted = client.delete(DELETE, query_string={"post_id": post_id}, headers=bearer(token))
    assert deleted.status_code == 200  # back to no posts for the next example


@THROUGH_THE_APP
@given(text=st.one_of(not_a_string, st.just("")))
def test_invalid_post_text_is_422_and_never_stored(app: Flask, client: FlaskClient, token: str, text: Any) -> None:
    response = client.post(ADD, json={"text": text}, headers=bearer(token))
    assert response.status_code == 422
    assert any(line.startswith("body.text:") for line in response.get_json()["extra"])
    assert _count(app, PostRow.id) == 0
    assert client.get(LIST, headers=bearer(token)).get_json() == []
