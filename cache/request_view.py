"""One request's view of the per-user cache: each user's state is read once, writes go straight through."""

from __future__ import annotations

import uuid

from cache.listing import UserState, VersionedListingCache


class RequestCacheView:
    """Reads a user's state (listing version and session stamp) once per request.

    The token check and the listing both need it; one shared read keeps a cached
    `get_my_posts` at one cache round trip. A write through the view forgets what it read.
    """

    def __init__(self, cache: VersionedListingCache) -> None:
        self._cache = cache
        self._states: dict[uuid.UUID, UserState] = {}

    def state(self, user_id: uuid.UUID) -> UserState:
        """The user's state, read from the cache on first use in this request."""
        state = self._states.get(user_id)
        if state is None:
            state = self._states[user_id] = self._cache.state(user_id)
        return state

    @property
    def max_entry_bytes(self) -> int:
        """The largest listing body the cache stores."""
        return self._cache.max_entry_bytes

    def body(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The listing body cached under this version, if any."""
        return self._cache.body(user_id, version)

    def put(self, user_id: uuid.UUID, version: str, body: bytes) -> None:
        """Cache a listing body under the version read before the database was queried."""
        self._cache.put(user_id, version, body)

    def invalidate(self, user_id: uuid.UUID) -> None:
        """Retire the user's listing version (after a write to their posts)."""
        self._states.pop(user_id, None)
        self._cache.invalidate(user_id)

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop a deleted user's cached listing."""
        self._states.pop(user_id, None)
        self._cache.forget(user_id)

    def remember_stamp(self, user_id: uuid.UUID, stamp: int) -> None:
        """Store a session stamp read from the database, unless a newer one is there."""
        self._cache.remember_stamp(user_id, stamp)

    def set_stamp(self, user_id: uuid.UUID, stamp: int) -> None:
        """Replace the user's session stamp after the database changed it."""
        self._states.pop(user_id, None)
        self._cache.set_stamp(user_id, stamp)
