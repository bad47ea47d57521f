"""What this process knows of each account's session generation: a bounded memo, and a shared copy.

The database holds the truth (users.session_generation) and the feed of endings
(session_endings). The memo lets a hot path skip the database after reading it: for a short
while on its own, and for as long as this process keeps reading the feed (which tells it which
remembered generations went stale). The copy in the shared cache is only for when the database
is down, so a worker that has not heard of a recent ending still refuses the old tokens.
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

    A generation only grows, so an older reading never replaces a newer one. `feed_seq` is the
    newest ending of the feed applied here (None before the first read), `feed_read_at` when
    the last read began, `feed_since` when the feed's unbroken reading began (time.monotonic()).
    """

    def __init__(self, backend: BaseCache, *, max_users: int = 50_000, copy_timeout: int = 7 * 24 * 3600) -> None:
        self._backend = backend
        self._max_users = max_users
        self._copy_timeout = copy_timeout
        self._known: OrderedDict[uuid.UUID, Known] = OrderedDict()
        self._lock = threading.Lock()
        self.feed_seq: int | None = None
        self.feed_read_at = float("-inf")
        self.feed_since = float("inf")

    def apply_endings(
        self, last_seq: int, changes: list[tuple[uuid.UUID, int | None]], complete: bool, read_at: float
    ) -> None:
        """Take in the feed's endings after `feed_seq`, read at `read_at` (time.monotonic() when the read began).

        A remembered generation that an ending passed is raised (GONE for a deleted account);
        accounts this process does not remember are not added. The feed vouches only for what
        was read from the database after it was first read, or after endings went missing (the
        process fell further behind than the feed keeps): `feed_since` moves to `read_at` then.
        """
        with self._lock:
            if self.feed_seq is not None and last_seq <= self.feed_seq:
                self.feed_read_at = max(self.feed_read_at, read_at)
                return
            if self.feed_seq is None or not complete:
                self.feed_since = read_at
            for user_id, generation in changes:
                old = self._known.get(user_id)
                current = GONE if generation is None else generation
                if old is not None and old.generation < current:
                    self._known[user_id] = Known(current, old.seen_at)
            self.feed_seq = last_seq
            self.feed_read_at = max(self.feed_read_at, read_at)

    def vouched_by_feed(self, known: Known, now: float, within: float) -> bool:
        """Whether the feed vouches for `known`: read within `within` seconds, continuously since before `known` was."""
        return now - self.feed_read_at < within and known.seen_at >= self.feed_since

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
