"""Sign-up and sign-in rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email

from models.entities import User
from repositories.errors import DuplicateEmailError
from repositories.users import UserRepository
from services.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidPasswordError,
    PasswordMismatchError,
    TokenRevokedError,
    UnknownUserError,
)
from services.passwords import Passwords

MAX_EMAIL_LENGTH = 254
# The password policy (CONTRACT.md "Passwords"), for sign-up and every other way to set one.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


class InvalidEmailError(ValueError):
    """The text is not a syntactically valid email address of at most 254 characters."""


def normalize_email(email_address: str) -> str:
    """The stored form of an email: validated, then lowercase, so case never makes a second account."""
    try:
        normalized = validate_email(email_address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from exc
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"An email address has at most {MAX_EMAIL_LENGTH} characters.")
    return normalized


def check_password(password: str) -> None:
    """Refuse a new password outside the policy: 8 to 256 characters (code points, astral ones included)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidPasswordError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, got {len(password)}"
        )


class AccountService:
    """Creates accounts and checks credentials."""

    def __init__(self, users: UserRepository, passwords: Passwords) -> None:
        self._users = users
        self._passwords = passwords

    def sign_up(self, email_address: str, password: str, confirm_password: str | None = None) -> User:
        """Create an account; the database's unique index settles concurrent duplicates."""
        check_password(password)
        if confirm_password is not None and confirm_password != password:
            raise PasswordMismatchError
        now = datetime.now(UTC)
        user = User(id=uuid.uuid4(), email_address=normalize_email(email_address), created_at=now, updated_at=now)
        try:
            self._users.add(user, self._passwords.hash(password))
        except DuplicateEmailError as exc:
            raise EmailTakenError(user.email_address) from exc
        return user

    def sign_in(self, email_address: str, password: str) -> User:
        """The account for these credentials; unknown email and wrong password fail alike."""
        try:
            found = self._users.credentials_by_email(normalize_email(email_address))
        except InvalidEmailError:
            found = None
        if found is None:
            self._passwords.verify_nobody(password)
            raise InvalidCredentialsError
        user, password_hash = found
        if not self._passwords.verify(password_hash, password):
            raise InvalidCredentialsError
        if self._passwords.needs_rehash(password_hash):
            self._users.update_password_hash(user.id, self._passwords.hash(password))
        return user

    def user_for_refresh(self, user_id: uuid.UUID, issued_at: datetime) -> User:
        """The account a refresh token names: it must still exist, and not have signed out since."""
        found = self._users.get_with_tokens_valid_after(user_id)
        if found is None:
            raise UnknownUserError(str(user_id))
        user, tokens_valid_after = found
        if tokens_valid_after is not None and issued_at <= tokens_valid_after:
            raise TokenRevokedError(str(user_id))
        return user

    def sign_out(self, user_id: uuid.UUID, issued_at: datetime) -> None:
        """Revoke every refresh token the user was issued until now (the one presented included).

        The presented token must itself still be valid: a revoked one or a deleted user fails
        like refresh does. Access tokens are not revoked; they expire on their own.
        """
        if not self._users.revoke_tokens(user_id, issued_at, datetime.now(UTC)):
            raise TokenRevokedError(str(user_id))
