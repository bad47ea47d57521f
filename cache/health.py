"""The Redis readiness probe: a PING with short timeouts."""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)


class RedisProbe:
    """Answers whether Redis answers a PING right now."""

    def __init__(self, redis_url: str, timeout: float) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def __call__(self) -> bool:
        """True when PING succeeded; the failure's type is logged, never its message."""
        try:
            self._client.ping()
        except Exception as exc:
            log.warning("readiness: redis unavailable (%s)", type(exc).__name__)
            return False
        return True
