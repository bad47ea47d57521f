"""Account rules: sign-up, sign-in, the password policy, password changes and account deletion."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cache.listing import VersionedListingCache
from models.entities import User
from repositories.errors import DuplicateEmailError
from repositories.users import UserRepository
from services.emails import EmailAddress
from services.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidPasswordError,
    PasswordMismatchError,
    TokenRevokedError,
    UnknownUserError,
)
from services.passwords import Passwords
from services.sessions import SessionService

# The password policy (docs/api.md, "Passwords"), for sign-up and every other way to set one.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def check_password(password: str) -> None:
    """Refuse a new password outside the policy: 8 to 256 characters (code points, astral ones included)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidPasswordError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, got {len(password)}"
        )


def password_version(password_hash: str) -> str:
    """A short digest of a password hash: it changes whenever the password does (device cookies hold it)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SignedIn:
    """An account whose password was just checked or set: what its new tokens and device cookie carry."""

    user: User
    generation: int  # the session generation read or written with the password hash
    password_version: str


class AccountService:
    """Creates accounts, checks credentials, changes passwords and deletes accounts."""

    def __init__(
        self, users: UserRepository, passwords: Passwords, sessions: SessionService, cache: VersionedListingCache
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._sessions = sessions
        self._cache = cache

    def sign_up(self, email_address: EmailAddress, password: str, confirm_password: str | None = None) -> SignedIn:
        """Create an account; the database's unique index settles concurrent duplicates."""
        check_password(password)
        if confirm_password is not None and confirm_password != password:
            raise PasswordMismatchError
        now = datetime.now(UTC)
        user = User(id=uuid.uuid4(), email_address=email_address, created_at=now, updated_at=now)
        password_hash = self._passwords.hash(password)
        try:
            self._users.add(user, password_hash)
        except DuplicateEmailError as exc:
            raise EmailTakenError(user.email_address) from exc
        self._sessions.learn(user.id, 0)
        return SignedIn(user, 0, password_version(password_hash))

    def sign_in(self, email_address: EmailAddress | None, password: str) -> SignedIn:
        """The account for these credentials and its session generation; unknown email and wrong password fail alike.

        `email_address` is None when the text given was no valid address: it matches no account.
        The generation is read with the password hash: if the password changes meanwhile, the
        tokens issued from this sign-in carry the old generation and are refused.
        """
        read_at = time.monotonic()
        found = None if email_address is None else self._users.credentials_by_email(email_address)
        if found is None:
            self._passwords.verify_nobody(password)
            raise InvalidCredentialsError
        user, password_hash, generation = found
        self._check(password_hash, password)
        if self._passwords.needs_rehash(password_hash):
            password_hash = self._passwords.hash(password)
            self._users.update_password_hash(user.id, password_hash)
        self._sessions.learn(user.id, generation, read_at)
        return SignedIn(user, generation, password_version(password_hash))

    def take_turn(self, *, email_address: EmailAddress | None = None, user_id: uuid.UUID | None = None) -> None:
        """Make password attempts on this account take turns until the caller's transaction ends.

        What the caller does meanwhile (check a rate limit, check the password, count a failure)
        is then atomic with respect to every other attempt on the account, on any worker or
        host. No address (none given, or not a valid one), or one that names no account, takes no turn.
        """
        if user_id is None and email_address is None:
            return
        self._users.take_turn(email_address=email_address, user_id=user_id)

    def password_version(self, user_id: uuid.UUID) -> str | None:
        """The account's current password version; None when there is no such account."""
        found = self._users.credentials_by_id(user_id)
        return None if found is None else password_version(found[1])

    def password_version_by_email(self, email_address: EmailAddress) -> tuple[uuid.UUID, str] | None:
        """The id and password version of the account with this email, if any."""
        found = self._users.credentials_by_email(email_address)
        return None if found is None else (found[0].id, password_version(found[1]))

    def find(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if it still exists."""
        return self._users.by_id(user_id)

    def change_password(
        self, user_id: uuid.UUID, current_password: str, new_password: str, confirm_password: str | None = None
    ) -> SignedIn:
        """Set a new password and end every session of the account; the caller's new standing.

        Tokens of the new generation (the caller's new pair) open the only session left. A
        concurrent ending (sign-out elsewhere) revoked the caller's token: TokenRevokedError.
        """
        check_password(new_password)
        if confirm_password is not None and confirm_password != new_password:
            raise PasswordMismatchError
        user, password_hash, generation = self._credentials(user_id)
        self._check(password_hash, current_password)
        changed_at = datetime.now(UTC)
        new_hash = self._passwords.hash(new_password)
        if not self._users.change_password(user_id, generation, new_hash, changed_at):
            raise TokenRevokedError(str(user_id))
        self._sessions.ended(user_id, generation + 1)
        changed = user.model_copy(update={"updated_at": changed_at})
        return SignedIn(changed, generation + 1, password_version(new_hash))

    def set_password(self, user_id: uuid.UUID, new_password: str) -> int:
        """Set a password without the current one (operators), ending every session; the new generation."""
        check_password(new_password)
        password_hash = self._passwords.hash(new_password)
        # Bounded: each retry means another ending committed in between, which only a flood would repeat.
        for _ in range(3):
            _, _, generation = self._credentials(user_id)
            if self._replace_password(user_id, generation, password_hash):
                return generation + 1
        raise TokenRevokedError(str(user_id))

    def set_password_in_generation(self, user_id: uuid.UUID, generation: int, new_password: str) -> str | None:
        """Set a password only while the account is still in session `generation`, ending every session.

        For a reset token, which carries the generation it was issued in. The new password
        version (for the resetting device's cookie); None (nothing changed) once a password
        change, another reset or a sign-out has committed since, however close.
        """
        check_password(new_password)
        password_hash = self._passwords.hash(new_password)
        if not self._replace_password(user_id, generation, password_hash):
            return None
        return password_version(password_hash)

    def _replace_password(self, user_id: uuid.UUID, generation: int, password_hash: str) -> bool:
        """The new hash and the next session generation in one conditional UPDATE; False if the generation moved."""
        if not self._users.change_password(user_id, generation, password_hash, datetime.now(UTC)):
            return False
        self._sessions.ended(user_id, generation + 1)
        return True

    def delete_account(self, user_id: uuid.UUID, password: str) -> User:
        """Delete the signed-in user's account once they confirm it with their password."""
        user, password_hash, _ = self._credentials(user_id)
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

    def _credentials(self, user_id: uuid.UUID) -> tuple[User, str, int]:
        found = self._users.credentials_by_id(user_id)
        if found is None:
            raise UnknownUserError(str(user_id))
        return found

    def _check(self, password_hash: str, password: str) -> None:
        if not self._passwords.verify(password_hash, password):
            raise InvalidCredentialsError
