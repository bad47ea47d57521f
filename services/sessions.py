"""Which tokens still open a session: each user's cut-off, kept in the database and mirrored in the cache.

A token issued at or before the user's cut-off (`tokens_valid_after`) is refused. Sign-out and a
password change move the cut-off to now; deleting the account removes it with the user. The
cache holds the cut-off as a *stamp* (microseconds since the epoch; NO_CUTOFF, or ACCOUNT_GONE),
read with the listing version in the request's one cache round trip, so every worker and host
sees a sign-out at its next request. When the cache does not know the stamp (cold, evicted,
down), the database answers and the cache learns it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cache.request_view import RequestCacheView
from models.entities import User
from repositories.users import UserRepository
from services.errors import TokenRevokedError, UnknownUserError

NO_CUTOFF = 0
ACCOUNT_GONE = -1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_stamp(cutoff: datetime | None) -> int:
    """The cache's form of a cut-off: microseconds since the epoch, NO_CUTOFF for none."""
    return NO_CUTOFF if cutoff is None else (cutoff - EPOCH) // timedelta(microseconds=1)


class SessionService:
    """Decides whether a token's session is still open, and ends sessions."""

    def __init__(self, users: UserRepository, cache: RequestCacheView) -> None:
        self._users = users
        self._cache = cache

    def is_revoked(self, user_id: uuid.UUID, issued_at: datetime) -> bool:
        """True when the user is gone or ended their sessions at or after `issued_at`."""
        stamp = self._cache.state(user_id).stamp
        if stamp is None:
            stamp = self._stamp_from_database(user_id)
        return stamp == ACCOUNT_GONE or (stamp != NO_CUTOFF and to_stamp(issued_at) <= stamp)

    def _stamp_from_database(self, user_id: uuid.UUID) -> int:
        exists, cutoff = self._users.cutoff_of(user_id)
        stamp = to_stamp(cutoff) if exists else ACCOUNT_GONE
        self._cache.remember_stamp(user_id, stamp)
        return stamp

    def user_for_refresh(self, user_id: uuid.UUID, issued_at: datetime) -> User:
        """The account a refresh token names: it must still exist, and not have ended its sessions since.

        Asks the database itself: a refresh is rare, and the token lives for weeks.
        """
        found = self._users.get_with_tokens_valid_after(user_id)
        if found is None:
            raise UnknownUserError(str(user_id))
        user, tokens_valid_after = found
        if tokens_valid_after is not None and issued_at <= tokens_valid_after:
            raise TokenRevokedError(str(user_id))
        return user

    def sign_out(self, user_id: uuid.UUID, issued_at: datetime) -> None:
        """End every session of the user (access and refresh tokens issued until now, everywhere).

        The presented refresh token must itself still be valid: a revoked one or a deleted user
        fails like refresh does.
        """
        now = datetime.now(UTC)
        if not self._users.revoke_tokens(user_id, issued_at, now):
            raise TokenRevokedError(str(user_id))
        self.publish(user_id, now)

    def publish(self, user_id: uuid.UUID, cutoff: datetime) -> None:
        """Make a cut-off the database already holds known to every worker and host."""
        self._cache.set_stamp(user_id, to_stamp(cutoff))

    def account_gone(self, user_id: uuid.UUID) -> None:
        """Refuse the tokens of a deleted account everywhere, without asking the database."""
        self._cache.set_stamp(user_id, ACCOUNT_GONE)

    def learn(self, user_id: uuid.UUID, cutoff: datetime | None) -> None:
        """Tell the cache a cut-off just read from the database (sign-in, sign-up): the next request needs no query."""
        self._cache.remember_stamp(user_id, to_stamp(cutoff))
