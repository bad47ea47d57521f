"""A bounded per-process copy of listing bodies, so a cache hit reads only the shared version stamp."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict


class BodyMemo:
    """A bounded in-process LRU of listing bodies by (user, version), each with its expiry.

    A body stored under a version never changes (a write retires the version instead), so
    remembering it is always coherent: a hit then reads only the shared version stamp.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[uuid.UUID, str], tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, user_id: uuid.UUID, version: str) -> bytes | None:
        """The remembered body, unless absent or expired."""
        key = (user_id, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, body = entry
            if expires_at <= time.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return body

    def put(self, user_id: uuid.UUID, version: str, body: bytes, ttl: float) -> None:
        """Remember a body until `ttl` seconds from now, evicting the least recently used beyond the bound."""
        if len(body) > self._max_bytes or ttl <= 0:
            return
        key = (user_id, version)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic() + ttl, body)
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    @property
    def size_bytes(self) -> int:
        """Bytes of bodies held now (never above the bound)."""
        return self._bytes

    def _drop(self, key: tuple[uuid.UUID, str]) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)
