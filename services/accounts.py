"""Account rules: sign-up, sign-in, the password policy, password changes and account deletion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email

from cache.request_view import RequestCacheView
from models.entities import User
from repositories.errors import DuplicateEmailError
from repositories.users import UserRepository
from services.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidPasswordError,
    PasswordMismatchError,
    UnknownUserError,
)
from services.passwords import Passwords
from services.sessions import SessionService

MAX_EMAIL_LENGTH = 254
# The password policy (docs/api.md, "Passwords"), for sign-up and every other way to set one.
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
    """Creates accounts, checks credentials, changes passwords and deletes accounts."""

    def __init__(
        self, users: UserRepository, passwords: Passwords, sessions: SessionService, cache: RequestCacheView
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._sessions = sessions
        self._cache = cache

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
        self._sessions.learn(user.id, None)
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
        user, password_hash, cutoff = found
        self._check(password_hash, password)
        if self._passwords.needs_rehash(password_hash):
            self._users.update_password_hash(user.id, self._passwords.hash(password))
        self._sessions.learn(user.id, cutoff)
        return user

    def find(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if it still exists."""
        return self._users.by_id(user_id)

    def change_password(
        self, user_id: uuid.UUID, current_password: str, new_password: str, confirm_password: str | None = None
    ) -> tuple[User, datetime]:
        """Set a new password and end every session of the account; the user and the new cut-off.

        Tokens issued after the cut-off (the caller's new pair) open the only session left.
        """
        check_password(new_password)
        if confirm_password is not None and confirm_password != new_password:
            raise PasswordMismatchError
        user, password_hash = self._credentials(user_id)
        self._check(password_hash, current_password)
        cutoff = datetime.now(UTC)
        if not self._users.change_password(user_id, self._passwords.hash(new_password), cutoff):
            raise UnknownUserError(str(user_id))  # deleted meanwhile
        self._sessions.publish(user_id, cutoff)
        return user.model_copy(update={"updated_at": cutoff}), cutoff

    def delete_account(self, user_id: uuid.UUID, password: str) -> User:
        """Delete the signed-in user's account once they confirm it with their password."""
        user, password_hash = self._credentials(user_id)
        self._check(password_hash, password)
        self.remove(user)
        return user

    def remove(self, user: User) -> None:
        """Delete the account and its posts; its tokens and cached listing are gone everywhere at once.

        The one way an account goes, for its owner (delete_account) and for operators (the CLI).
        """
        if not self._users.delete(user.id):
            raise UnknownUserError(str(user.id))  # deleted meanwhile
        self._sessions.account_gone(user.id)
        self._cache.forget(user.id)

    def _credentials(self, user_id: uuid.UUID) -> tuple[User, str]:
        found = self._users.credentials_by_id(user_id)
        if found is None:
            raise UnknownUserError(str(user_id))
        return found

    def _check(self, password_hash: str, password: str) -> None:
        if not self._passwords.verify(password_hash, password):
            raise InvalidCredentialsError
