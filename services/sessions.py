"""Which tokens still open a session, and ending sessions: the session generation rule.

Every account has a session generation in the database (users.session_generation). Every
token carries the generation its issuing read together with the credentials or the session it
checked (the `gen` claim). Ending the sessions (sign-out, password change, password reset)
adds one in the same UPDATE that makes the change; deleting the account removes it. A token is
valid only while its generation is the account's current one, so a sign-in or refresh that read
the old generation issues tokens that are refused once the ending commits, whatever the clocks
or the cache do.

The access-token check reads the generation from the database, and trusts what it read for
TRUSTED_SECONDS in this process (the contract allows one second for an ending to reach every
worker and host). Beyond that it trusts it for as long as this process keeps reading the feed of
endings (repositories/session_feed.py: every ending adds a row in its own transaction): a read
of the feed at most TRUSTED_SECONDS old tells which remembered generations went stale, so an
account's row is read about once per worker, not once per request, whatever the number of
users (up to FEED_TRUSTED_SECONDS, after which it is read again: an ending written without the
feed, by an older release during an upgrade, still reaches every worker). A token older than
what this process knows is refused without a query. While the database is down, the newest
generation known here or in the shared cache decides, and a token that neither can vouch for
gets 503, never a pass.
"""

from __future__ import annotations

import time
import uuid

from cache.sessions import GONE, SessionGenerations
from models.entities import User
from repositories.database import DatabaseUnavailableError
from repositories.session_feed import SessionFeedRepository
from repositories.users import UserRepository
from services.errors import TokenRevokedError, UnknownUserError

# Half the contract's one-second propagation: the other half covers a request already past its check.
TRUSTED_SECONDS = 0.5
# How long a generation read from the database is believed on the feed's word.
FEED_TRUSTED_SECONDS = 30.0


class SessionService:
    """Decides whether a token's session is still open, and ends sessions."""

    def __init__(
        self,
        users: UserRepository,
        generations: SessionGenerations,
        feed: SessionFeedRepository | None = None,
        trusted_seconds: float = TRUSTED_SECONDS,
    ) -> None:
        """`feed` None: remembered generations are trusted for `trusted_seconds` only."""
        self._users = users
        self._generations = generations
        self._feed = feed
        self._trusted_seconds = trusted_seconds

    def is_revoked(self, user_id: uuid.UUID, generation: int) -> bool:
        """True unless `generation` is the account's current session generation."""
        verdict = self.verdict_from_memory(user_id, generation)
        if verdict is None and self._feed_may_tell(user_id, generation):
            verdict = self.verdict_from_memory(user_id, generation)
        if verdict is not None:
            return verdict
        known = self._generations.known(user_id)
        try:
            current = self.current_generation(user_id)
        except DatabaseUnavailableError:
            return generation < self._known_floor(user_id, known.generation if known else None)
        return generation != current

    def verdict_from_memory(self, user_id: uuid.UUID, generation: int) -> bool | None:
        """Whether the session is revoked, when this process can tell without the database; None when it cannot.

        Revoked when the process knows a newer generation; open when it read this very one within
        the trusted time.
        """
        known = self._generations.known(user_id)
        if known is None:
            return None
        if generation < known.generation:
            return True
        if generation == known.generation:
            now = time.monotonic()
            age = now - known.seen_at
            if age < self._trusted_seconds:
                return False
            if age < FEED_TRUSTED_SECONDS and self._generations.vouched_by_feed(known, now, self._trusted_seconds):
                return False
        return None

    def _feed_may_tell(self, user_id: uuid.UUID, generation: int) -> bool:
        """Read the feed when that may vouch for a remembered generation; True when it was read.

        Only for an account this process remembers at the token's generation or an older one
        (a newer token's generation may be what an ending since then made current), and only
        when the last read is older than the trusted time. A database that is down is left to
        the caller's fallback.
        """
        known = self._generations.known(user_id)
        if self._feed is None or known is None or generation < known.generation:
            return False
        if time.monotonic() - self._generations.feed_read_at < self._trusted_seconds:
            return False
        read_at = time.monotonic()
        try:
            endings = self._feed.since(self._generations.feed_seq)
        except DatabaseUnavailableError:
            return False
        self._generations.apply_endings(endings.last_seq, endings.changes, endings.complete, read_at)
        return True

    def current_generation(self, user_id: uuid.UUID) -> int:
        """The account's generation from the database (GONE once deleted), remembered in this process."""
        read_at = time.monotonic()
        current = self._users.session_generation(user_id)
        current = GONE if current is None else current
        self._generations.learn(user_id, current, read_at)
        return current

    def _known_floor(self, user_id: uuid.UUID, here: int | None) -> int:
        """The newest generation known without the database; DatabaseUnavailableError when none is."""
        shared = self._generations.shared(user_id)
        known = [value for value in (here, shared) if value is not None]
        if not known:
            raise DatabaseUnavailableError
        return max(known)

    def user_for_refresh(self, user_id: uuid.UUID, generation: int) -> User:
        """The account a refresh token names: it must exist and still be in the token's generation.

        Asks the database itself: a refresh is rare, and the token lives for weeks.
        """
        read_at = time.monotonic()
        found = self._users.with_session_generation(user_id)
        if found is None:
            self._generations.learn(user_id, GONE, read_at)
            raise UnknownUserError(str(user_id))
        user, current = found
        self._generations.learn(user_id, current, read_at)
        if generation != current:
            raise TokenRevokedError(str(user_id))
        return user

    def sign_out(self, user_id: uuid.UUID, generation: int) -> None:
        """End every session of the account, if the presented token's generation is still the current one."""
        if not self._users.end_sessions(user_id, generation):
            raise TokenRevokedError(str(user_id))
        self.ended(user_id, generation + 1)

    def ended(self, user_id: uuid.UUID, generation: int) -> None:
        """Tell this process and the shared cache about an ending the database already holds."""
        self._generations.publish(user_id, generation)

    def account_gone(self, user_id: uuid.UUID) -> None:
        """Refuse the tokens of a deleted account at once in this process, and in the others' outages."""
        self._generations.publish(user_id, GONE)

    def learn(self, user_id: uuid.UUID, generation: int, read_at: float | None = None) -> None:
        """Remember a generation read with the credentials (sign-in, sign-up) at `read_at` (time.monotonic())."""
        self._generations.learn(user_id, generation, read_at)
