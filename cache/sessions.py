"""What this process knows of each account's session generation: a bounded memo, and a shared copy.

The database holds the truth (users.session_generation). The memo lets a hot path skip the
database for a short while after reading it; the copy in the shared cache is only for when the
database is down, so a worker that has not heard of a recent ending still refuses the old tokens.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from cachelib import BaseCache

log = logging.getLogger(__name__)

# The generation of an account that no longer exists: above every token's.
GONE = 2**31


@dataclass(frozen=True)
class Known:
    """A generation as last read, and when (time.monotonic())."""

    generation: int
    seen_at: float


class SessionGenerations:
    """A per-process LRU of generations (at most `max_users`), backed by a shared cachelib copy.

    A generation only grows, so an older reading never replaces a newer one.
    """

    def __init__(self, backend: BaseCache, *, max_users: int = 10_000, copy_timeout: int = 7 * 24 * 3600) -> None:
        self._backend = backend
        self._max_users = max_users
        self._copy_timeout = copy_timeout
        self._known: OrderedDict[uuid.UUID, Known] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, user_id: uuid.UUID) -> Known | None:
        """The newest generation this process has read for the account, if it has one."""
        with self._lock:
            known = self._known.get(user_id)
            if known is not None:
                self._known.move_to_end(user_id)
            return known

    def learn(self, user_id: uuid.UUID, generation: int, read_at: float | None = None) -> None:
        """Remember a generation read from the database at `read_at` (time.monotonic(); default now).

        The time of the read, not of this call: trust runs from what the database said then.
        """
        seen_at = time.monotonic() if read_at is None else read_at
        with self._lock:
            old = self._known.get(user_id)
            if old is not None and old.generation > generation:
                self._known.move_to_end(user_id)
                return
            if old is not None and old.generation == generation:
                seen_at = max(seen_at, old.seen_at)
            self._known[user_id] = Known(generation, seen_at)
            self._known.move_to_end(user_id)
            while len(self._known) > self._max_users:
                self._known.popitem(last=False)
        if old is None:
            self._share_if_absent(user_id, generation)

    def publish(self, user_id: uuid.UUID, generation: int) -> None:
        """Remember a generation this process just committed, and share it for when the database is down."""
        self.learn(user_id, generation)
        try:
            stored = self._backend.set(_key(user_id), generation, timeout=self._copy_timeout)
        except Exception:  # the database already holds the ending; the copy only serves its outages
            stored = False
        if stored is False:
            log.warning("session generation of user %s not shared (cache unavailable)", user_id)

    def _share_if_absent(self, user_id: uuid.UUID, generation: int) -> None:
        """Give the shared copy a first value (never replacing one: it may be a newer ending's).

        So that a worker which never served the account can still vouch for its tokens while the
        database is down. Once per account per process.
        """
        key = _key(user_id)
        try:
            self._backend.add(key, generation, timeout=self._copy_timeout)
        except Exception:  # only an outage's fallback is lost; the database still decides
            log.warning("session generation of user %s not shared (cache unavailable)", user_id)

    def shared(self, user_id: uuid.UUID) -> int | None:
        """The generation other processes last wrote to the shared cache; None if absent or unreachable."""
        try:
            value = self._backend.get(_key(user_id))
        except Exception:  # the copy is a fallback: unreachable means unknown, never accepted
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def _key(user_id: uuid.UUID) -> str:
    return f"session:{user_id}"
