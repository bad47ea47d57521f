"""Blocking CPU work (argon2 password hashing) off the gevent hub, onto a few real OS threads.

argon2-cffi releases the GIL while it hashes (20-40 ms with the service's parameters), so under
gthread other threads kept serving meanwhile. Under the gevent worker every request of a process
shares one OS thread: a hash run there would stop every other connection of the worker for its
whole duration. `offload()` returns a runner that, when the process is monkey-patched by
gevent, runs the call on a small pool of native threads (gevent's ThreadPool) while the calling
greenlet waits cooperatively; elsewhere (gthread, `flask run`, tests) it simply calls it.

The pool is small on purpose: each argon2 hash holds 19 MiB, and the machine has few cores, so
at most `HASH_THREADS` hashes run at once per worker and further sign-ins queue for a slot.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from services.passwords import BlockingRunner, run_here

T = TypeVar("T")

HASH_THREADS = 2


class ThreadOffload:
    """Runs calls on a gevent ThreadPool of native threads, created on first use (after the fork)."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._pool: Any = None

    def __call__(self, call: Callable[[], T]) -> T:
        """Run the call on a pool thread; this greenlet yields to the others until it is done."""
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self._threads)
        result: T = self._pool.apply(call)
        return result


def gevent_is_active() -> bool:
    """True when gevent has monkey-patched threading in this process (gunicorn's gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def offload(threads: int = HASH_THREADS) -> BlockingRunner:
    """The runner for blocking calls in this process: a native thread pool under gevent, else inline."""
    return ThreadOffload(threads) if gevent_is_active() else run_here
