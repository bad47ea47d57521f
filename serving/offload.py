"""Blocking CPU work (argon2 password hashing) off the gevent hub, onto a few real OS threads.

argon2-cffi releases the GIL while it hashes (20-40 ms with the service's parameters), so under
gthread other threads kept serving meanwhile. Under the gevent worker every request of a process
shares one OS thread: a hash run there would stop every other connection of the worker for its
whole duration. `offload()` returns a runner that, when the process is monkey-patched by
gevent, runs the call on a small pool of native threads (gevent's ThreadPool) while the calling
greenlet waits cooperatively; elsewhere (gthread, `flask run`, tests) it simply calls it.

The hashing threads run at a lower CPU priority (nice +10, Linux threads have their own): when
the cores are busy, the event loop that serves every other request of the worker goes first,
and hashes use what is left.

Two bounds per worker:

- `HASH_THREADS` (2) hashes run at once: each holds 19 MiB, and the machine has few cores.
- `HASH_IN_FLIGHT` (16) calls running or waiting; one more is refused at once with 503 and
  `Retry-After: 1`. The failed-sign-in limit checks an attempt before its hash and counts it
  after, so every attempt already waiting when the limit fills still gets its answer. gthread
  bounded those by its threads (4 per worker); without this bound a burst of a thousand
  concurrent guesses would all pass the check before the first failure was counted. 16 lets
  a benchmark's 16 concurrent sign-ins land on one worker without refusals (8 did not).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from werkzeug.exceptions import ServiceUnavailable

from services.passwords import BlockingRunner, run_here

T = TypeVar("T")

HASH_THREADS = 2
HASH_IN_FLIGHT = 16
HASH_NICENESS = 10
BUSY_MESSAGE = "Server busy, retry later"


class ThreadOffload:
    """Runs calls on a gevent ThreadPool of native threads (made on first use, after the fork), boundedly."""

    def __init__(self, threads: int, max_in_flight: int, niceness: int = HASH_NICENESS) -> None:
        self._threads = threads
        self._max_in_flight = max_in_flight
        self._niceness = niceness
        self._in_flight = 0
        self._pool: Any = None
        self._niced: set[int] = set()  # native ids of the pool threads already lowered

    def __call__(self, call: Callable[[], T]) -> T:
        """Run the call on a pool thread while this greenlet yields; 503 when too many already wait."""
        # Greenlets of one worker share one OS thread and switch only while waiting below, so
        # this check and increment cannot interleave with another greenlet's.
        if self._in_flight >= self._max_in_flight:
            raise ServiceUnavailable(BUSY_MESSAGE, retry_after=1)
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self._threads)
        self._in_flight += 1
        try:
            result: T = self._pool.apply(self._run_lowered, (call,))
        finally:
            self._in_flight -= 1
        return result

    def _run_lowered(self, call: Callable[[], T]) -> T:
        """On a pool thread: lower this thread's CPU priority once, then run the call."""
        thread = threading.get_native_id()
        if thread not in self._niced:
            self._niced.add(thread)
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: run as is
                os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + self._niceness)
        return call()

    def close(self) -> None:
        """Stop the pool's threads (a worker never needs to: they end with the process)."""
        if self._pool is not None:
            self._pool.kill()
            self._pool = None


def gevent_is_active() -> bool:
    """True when gevent has monkey-patched threading in this process (gunicorn's gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def offload(threads: int = HASH_THREADS, max_in_flight: int = HASH_IN_FLIGHT) -> BlockingRunner:
    """The runner for blocking calls in this process: a native thread pool under gevent, else inline."""
    return ThreadOffload(threads, max_in_flight) if gevent_is_active() else run_here
