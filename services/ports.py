"""Interfaces services need from the outside world, implemented in core."""

from __future__ import annotations

import uuid
from typing import Protocol


class ListingCache(Protocol):
    """A per-user cache of the encoded post listing."""

    def get(self, user_id: uuid.UUID) -> tuple[str, bytes | None]:
        """The user's current cache version and the body cached under it, if any."""
        ...

    def put(self, user_id: uuid.UUID, version: str, body: bytes) -> None:
        """Cache `body` under the version read before the database was queried."""
        ...

    def invalidate(self, user_id: uuid.UUID) -> None:
        """Make every cached listing of this user unreachable."""
        ...
