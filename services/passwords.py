"""Password hashing with argon2id at or above OWASP's minimum parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from observability.tracing import span

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1

T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs a blocking call and returns its result or raises its exception (e.g. on another thread)."""

    def __call__(self, call: Callable[[], T], /) -> T:
        """Run `call` to completion."""
        ...


def run_here(call: Callable[[], T]) -> T:
    """The default runner: call it in this thread."""
    return call()


class Passwords:
    """Hashes and verifies passwords; verification of an unknown account costs the same."""

    def __init__(
        self,
        memory_kib: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
        run: BlockingRunner = run_here,
    ) -> None:
        # Hashing is CPU-bound for tens of milliseconds: `run` lets the server move it off a
        # thread that must stay responsive (the gevent hub; see serving/offload.py).
        self._run = run
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Made up front: made lazily, the first unknown-email sign-in would cost twice as much.
        self._dummy_hash = self._hasher.hash("timing-equaliser-not-a-password")

    def hash(self, password: str) -> str:
        """A salted argon2id hash in PHC string form."""
        with span("password hash"):
            return self._run(lambda: self._hasher.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; never raises for a mismatch or a damaged hash."""
        with span("password verify"):
            return self._run(lambda: self._matches(password_hash, password))

    def _matches(self, password_hash: str, password: str) -> bool:
        # Decided where the hash runs: a mismatch is an answer, not an error to carry back across
        # threads (gevent's thread pool would print every one as a traceback).
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_nobody(self, password: str) -> None:
        """Spend one verification on a dummy hash so unknown emails take as long as wrong passwords."""
        self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)
