"""A QueuePool that counts the checkouts that had to wait for a connection.

SQLAlchemy's pool events fire after a checkout, so they cannot tell a wait; this subclass looks
at the pool (public `checkedin()` and `overflow()`) before handing the checkout to QueuePool.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from observability.metrics import POOL_WAIT_SECONDS, POOL_WAITS


class MeteredQueuePool(QueuePool):
    """QueuePool; a checkout that finds no idle connection and no overflow left is a wait."""

    def __init__(self, creator: Any, pool_size: int = 5, max_overflow: int = 10, **kwargs: Any) -> None:
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kwargs)
        self.overflow_limit = max_overflow

    def connect(self) -> PoolProxiedConnection:
        """Check out a connection; when every connection is in use, count the wait and its length."""
        # QueuePool blocks exactly when its queue is empty and the overflow is used up
        # (a negative max_overflow means unlimited: it never blocks).
        if self.overflow_limit < 0 or self.checkedin() > 0 or self.overflow() < self.overflow_limit:
            return super().connect()
        POOL_WAITS.inc()  # now, not when it ends: a scrape during a long wait shows it
        started = time.perf_counter()
        try:
            return super().connect()
        finally:
            POOL_WAIT_SECONDS.inc(time.perf_counter() - started)
