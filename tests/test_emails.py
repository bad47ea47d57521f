"""One email normalization: idempotent over every Unicode letter, applied once at every entry, on both databases.

The issue's address (`a` + `Ϊ` + combining acute) lowercases to `ϊ` + acute, which NFC composes
into `ΐ`: one pass of "NFC, then lowercase" is not idempotent, so sign-up (which normalized
twice) stored a form that sign-in (once) never reached.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from email_validator import validate_email
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, insert, select
from sqlalchemy.pool import NullPool

from app import create_app
from config import load_settings
from models.tables import UserRow
from resources import resources
from services.emails import MAX_EMAIL_LENGTH, InvalidEmailError, email_or_none, normalize_email
from tests.support.api import PASSWORD, SIGN_IN, TEST_SECRET, Api, MakeClient
from tests.support.smtp import SmtpServer
from tests.test_migrations import alembic_config

ISSUE_EMAIL = "a\u03aa\u0301@example.com"
STORED = "a\u0390@example.com"  # its normal form: ΐ precomposed
TAKEN = {"error": "Email already exists"}

LETTERS = [chr(code) for code in range(0x110000) if unicodedata.category(chr(code)).startswith("L")]


def _composition_parts() -> tuple[set[str], list[str]]:
    """Starters and marks of Unicode's canonical two-character decompositions (what NFC composes)."""
    starters: set[str] = set()
    marks: set[str] = set()
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = [chr(int(part, 16)) for part in decomposition.split()]
            if len(parts) == 2:
                starters.add(parts[0])
                marks.add(parts[1])
    return starters, sorted(marks)


def _letters_that_compose(starters: set[str]) -> list[str]:
    """Letters that are, or whose lowercase or uppercase (decomposed) starts with, a composition's starter."""
    return [
        letter
        for letter in LETTERS
        if any(unicodedata.normalize("NFD", form)[:1] in starters for form in (letter, letter.lower(), letter.upper()))
    ]


def _assert_idempotent(addresses: Iterator[str]) -> int:
    """normalize(normalize(x)) == normalize(x), lowercase and NFC, for every valid address; how many were valid."""
    valid = 0
    unstable: list[str] = []
    for address in addresses:
        try:
            normal = normalize_email(address)
        except InvalidEmailError:
            continue
        valid += 1
        if (
            normalize_email(normal) != normal
            or normal.lower() != normal
            or unicodedata.normalize("NFC", normal) != normal
        ):
            unstable.append(ascii(address))
    assert unstable == [], unstable[:20]
    return valid


def test_the_issues_address_has_one_normal_form() -> None:
    assert normalize_email(ISSUE_EMAIL) == STORED
    assert normalize_email(STORED) == STORED
    # Every spelling of it that differs in case or composition is the same address.
    for spelling in (ISSUE_EMAIL.upper(), unicodedata.normalize("NFD", ISSUE_EMAIL), "A\u03aa\u0301@EXAMPLE.COM"):
        assert normalize_email(spelling) == STORED, ascii(spelling)
    # The single pass this release replaces is not idempotent: that was the bug.
    one_pass = validate_email(ISSUE_EMAIL, check_deliverability=False).normalized.lower()
    assert one_pass != STORED and validate_email(one_pass, check_deliverability=False).normalized.lower() == STORED


def test_normalization_is_idempotent_for_every_letter() -> None:
    assert len(LETTERS) > 100_000  # every code point of category L*, from the running Python's Unicode
    assert _assert_idempotent(f"a{letter}@example.com" for letter in LETTERS) == len(LETTERS)


def test_normalization_is_idempotent_for_every_cased_letter_in_the_domain() -> None:
    # The domain goes through IDNA (UTS 46 maps case and composes), then the same lowercase and
    # NFC; only letters that have a case can be changed by them. Some are refused by IDNA.
    cased = [letter for letter in LETTERS if letter.lower() != letter or letter.upper() != letter]
    assert len(cased) > 2500
    assert _assert_idempotent(f"ada@{letter}.example.com" for letter in cased) > 1000


def test_normalization_is_idempotent_for_letters_with_combining_marks() -> None:
    starters, marks = _composition_parts()
    letters = _letters_that_compose(starters)
    assert len(letters) > 1000 and len(marks) > 80
    one_mark = (f"a{letter}{mark}@example.com" for letter in letters for mark in marks)
    assert _assert_idempotent(one_mark) == len(letters) * len(marks)
    # Greek stacks two marks (dialytika and tonos, breathing and perispomeni, iota subscript).
    greek = [letter for letter in letters if unicodedata.name(letter, "").startswith("GREEK")]
    stacking = ["\u0300", "\u0301", "\u0308", "\u0313", "\u0314", "\u0342", "\u0345"]
    two_marks = (f"a{letter}{m1}{m2}@example.com" for letter in greek for m1 in stacking for m2 in stacking)
    assert _assert_idempotent(two_marks) == len(greek) * len(stacking) ** 2


@pytest.mark.parametrize(
    "text",
    ["", "not an email", "a@b", "@example.com", "a@@example.com", "a..b@example.com", "a@" + "b" * 250 + ".com"],
)
def test_invalid_addresses_are_refused_cleanly(text: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalize_email(text)
    assert email_or_none(text) is None


def test_a_normal_form_longer_than_the_limit_is_refused() -> None:
    # "İ" (2 octets) lowercases to "i" + combining dot above (3 octets): the normal form outgrows the input.
    local = "\u0130" * 40
    domain = ".".join(("b" * 60, "b" * 60, "b" * 24, "com"))
    text = f"{local}@{domain}"
    assert len(text.encode()) <= MAX_EMAIL_LENGTH < len(text.lower().encode())
    with pytest.raises(InvalidEmailError, match="too long"):
        normalize_email(text)


# Through the HTTP API, on SQLite and MariaDB: every entry applies the one normalization.


def test_sign_up_then_sign_in_with_the_very_same_string(api: Api) -> None:
    signed_up = api.sign_up(ISSUE_EMAIL)
    assert signed_up.status_code == 200, signed_up.get_json()
    assert signed_up.get_json()["email_address"] == STORED
    json_sign_in = api.sign_in(ISSUE_EMAIL)
    assert json_sign_in.status_code == 200, json_sign_in.get_json()
    form_sign_in = api.sign_in(ISSUE_EMAIL, form=True)
    assert form_sign_in.status_code == 200, form_sign_in.get_json()
    assert json_sign_in.get_json()["id"] == form_sign_in.get_json()["id"] == signed_up.get_json()["id"]
    again = api.sign_up(ISSUE_EMAIL)
    assert again.status_code == 400 and again.get_json() == TAKEN
    # Other spellings of the one address are the one account.
    assert api.sign_up(unicodedata.normalize("NFD", ISSUE_EMAIL).upper()).get_json() == TAKEN
    assert api.sign_in(STORED).get_json()["id"] == signed_up.get_json()["id"]
    assert api.client.post(SIGN_IN, json={"email": ISSUE_EMAIL, "password": PASSWORD}).status_code == 200


def test_the_failed_sign_in_limit_counts_every_spelling_against_one_account(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="3 per minute"))
    api.user(ISSUE_EMAIL)
    spellings = [ISSUE_EMAIL, STORED, unicodedata.normalize("NFD", ISSUE_EMAIL).upper()]
    assert [api.sign_in(spelling, "wrong password").status_code for spelling in spellings] == [401, 401, 401]
    # The account is locked whichever way it is spelled, the right password included.
    assert api.sign_in(ISSUE_EMAIL).status_code == 429
    assert api.sign_in(STORED, form=True).status_code == 429


def test_a_device_cookie_is_trusted_for_the_very_same_string(make_client: MakeClient) -> None:
    owner = make_client(rate_limit_sign_in_failures="2 per minute")
    owner_api = Api(owner)
    signed_up = owner_api.sign_up(ISSUE_EMAIL)
    cookie = signed_up.headers["Set-Cookie"].split(";", 1)[0]
    stranger = Api(owner)  # the same app; the stranger sends no cookie
    assert [stranger.sign_in(STORED, "wrong password").status_code for _ in range(3)] == [401, 401, 429]
    # The owner's device names the account as typed at sign-up: its cookie is trusted.
    trusted = owner_api.sign_in(ISSUE_EMAIL, headers={"Cookie": cookie})
    assert trusted.status_code == 200, trusted.get_json()


def test_recovery_mails_the_account_for_the_very_same_string(make_client: MakeClient, smtp_server: SmtpServer) -> None:
    client = make_client(**smtp_server.settings(), mail_retry_seconds=0.01)
    api = Api(client)
    api.user(ISSUE_EMAIL)
    assert api.forgot_password(ISSUE_EMAIL).status_code == 202
    outbox = resources(client.application).outbox
    assert outbox is not None and outbox.wait_idle(15.0)
    [received] = smtp_server.wait_for(1)
    assert received.message["To"] == STORED


def test_the_cli_normalizes_like_the_api(app: Flask, client: FlaskClient) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["users", "create", ISSUE_EMAIL, "--password", PASSWORD])
    assert created.exit_code == 0, created.output
    assert f"created user {STORED}" in created.output
    api = Api(client)
    assert api.sign_in(ISSUE_EMAIL).status_code == 200
    assert api.sign_up(ISSUE_EMAIL).get_json() == TAKEN
    deleted = runner.invoke(args=["users", "delete", unicodedata.normalize("NFD", ISSUE_EMAIL), "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert api.sign_in(ISSUE_EMAIL).status_code == 401
    invalid = runner.invoke(args=["users", "delete", "not an email", "--yes"])
    assert invalid.exit_code == 1 and "invalid email address" in invalid.output


# Accounts stored under the old normalization: revision 0006 moves them to the normal form.

# Typed at sign-up through the CLI, which normalized once: stored in a form sign-in no longer reaches.
CLI_TYPED = "aH\u0331@example.com"
CLAIMED_TYPED = "b\u03aa\u0301@example.com"  # its single pass collides with an account already normal


def _old_single_pass(typed: str) -> str:
    return validate_email(typed, check_deliverability=False).normalized.lower()


@pytest.fixture
def old_database(database_url: str) -> Iterator[str]:
    """A database at revision 0005 (before the normal forms), emptied of its tables afterwards."""
    config = alembic_config(database_url)
    command.upgrade(config, "0005")
    yield database_url
    command.downgrade(config, "base")


def _insert_users(database_url: str, password_hash: str, emails: list[str]) -> dict[str, uuid.UUID]:
    now = datetime.now(UTC)
    ids = {email: uuid.uuid4() for email in emails}
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for email, user_id in ids.items():
                row: dict[str, Any] = {
                    "id": user_id,
                    "email_address": email,
                    "password_hash": password_hash,
                    "created_at": now,
                    "updated_at": now,
                }
                connection.execute(insert(UserRow).values(**row))
    finally:
        engine.dispose()
    return ids


def _stored_emails(database_url: str) -> dict[uuid.UUID, str]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {row.id: row.email_address for row in connection.execute(select(UserRow.id, UserRow.email_address))}
    finally:
        engine.dispose()


def test_0006_moves_old_forms_so_their_owners_sign_in_as_typed(
    old_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    cli_stored, claimed_stored = _old_single_pass(CLI_TYPED), _old_single_pass(CLAIMED_TYPED)
    assert cli_stored != normalize_email(CLI_TYPED) and claimed_stored != normalize_email(CLAIMED_TYPED)
    app = create_app(load_settings({}, app_env="testing", database_url=old_database, jwt_secret_key=TEST_SECRET))
    with app.app_context():
        password_hash = resources(app).passwords.hash(PASSWORD)
    resources(app).engine.dispose()
    normal_claimed = normalize_email(CLAIMED_TYPED)
    ids = _insert_users(
        old_database, password_hash, [cli_stored, STORED, "ada@example.com", claimed_stored, normal_claimed]
    )
    api = Api(app.test_client())
    assert api.sign_in(CLI_TYPED).status_code == 401  # the old form is out of reach before the revision

    with caplog.at_level(logging.INFO, logger="alembic.versions.0006"):
        command.upgrade(alembic_config(old_database), "0006")

    stored = _stored_emails(old_database)
    assert stored[ids[cli_stored]] == normalize_email(CLI_TYPED)
    assert stored[ids[STORED]] == STORED and stored[ids["ada@example.com"]] == "ada@example.com"
    # Two accounts that are one address: neither is merged or moved; the log names both ids.
    assert stored[ids[claimed_stored]] == claimed_stored and stored[ids[normal_claimed]] == normal_claimed
    assert f"account {ids[claimed_stored]} keeps its stored email" in caplog.text
    assert str(ids[normal_claimed]) in caplog.text and "moved 1 stored email(s)" in caplog.text
    assert CLAIMED_TYPED not in caplog.text and claimed_stored not in caplog.text  # ids, never addresses

    signed_in = api.sign_in(CLI_TYPED)
    assert signed_in.status_code == 200 and signed_in.get_json()["id"] == str(ids[cli_stored])
    assert api.sign_in(ISSUE_EMAIL).get_json()["id"] == str(ids[STORED])
    assert api.sign_up(CLI_TYPED).get_json() == TAKEN
    resources(app).engine.dispose()

    # Downgrading keeps the normal forms; upgrading again changes nothing more.
    command.downgrade(alembic_config(old_database), "0005")
    assert _stored_emails(old_database) == stored
    command.upgrade(alembic_config(old_database), "0006")
    assert _stored_emails(old_database) == stored
