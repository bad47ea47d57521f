"""A small circuit breaker: after a failure, skip a remote dependency for a cool-down period.

Used by the listing cache (Redis) and by the database engine (repositories/database.py); it
imports nothing of the project, so any layer may use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed until a failure; then open for `cooldown` seconds, after which one caller may probe.

    A frozen peer costs a socket timeout per call; with the breaker, one process pays it at
    most once per cool-down instead of on every call of every request. The probe has
    `probe_timeout` seconds (default: one cool-down) to report back before another caller may
    probe; give it the dependency's worst-case answer time when that exceeds the cool-down, so
    that probes never pile up behind a silent peer.
    """

    def __init__(
        self, cooldown: float, clock: Callable[[], float] = time.monotonic, *, probe_timeout: float | None = None
    ) -> None:
        self._cooldown = cooldown
        self._probe_timeout = cooldown if probe_timeout is None else probe_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failing = False
        self._retry_at = 0.0

    @property
    def is_open(self) -> bool:
        """True while the last call failed (whether or not a probe is due)."""
        return self._failing

    def allows(self) -> bool:
        """May the caller use the dependency now? While open, only one caller per cool-down may."""
        with self._lock:
            if not self._failing:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            # This caller is the probe; the others keep skipping until it reports back.
            self._retry_at = now + self._probe_timeout
            return True

    def succeeded(self) -> None:
        """The dependency answered: close the breaker."""
        with self._lock:
            self._failing = False

    def failed(self) -> None:
        """The dependency failed: open the breaker for one cool-down."""
        with self._lock:
            self._failing = True
            self._retry_at = self._clock() + self._cooldown
