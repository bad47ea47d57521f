"""The session generation rule (services/sessions.py) over the real database and cache backends.

Each SessionService below stands for one worker: its own SessionGenerations memo, one shared
cache backend, one database. The database decides; a worker trusts what it read for a bounded
time, or for as long as it keeps reading the feed of endings, and while the database is down
only a generation it or the shared cache knows vouches.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from cachelib import SimpleCache
from flask import Flask
from sqlalchemy.orm import Session

import repositories.session_feed
from cache.sessions import GONE, SessionGenerations
from repositories.database import DatabaseUnavailableError
from repositories.session_feed import SessionFeedRepository
from repositories.users import UserRepository
from resources import resources
from services.errors import TokenRevokedError
from services.sessions import SessionService
from tests.support.api import SignUp

Worker = Callable[..., SessionService]


class DownUsers(UserRepository):
    """The users repository of a worker whose database is known down (its breaker is open)."""

    def session_generation(self, user_id: uuid.UUID) -> int | None:
        raise DatabaseUnavailableError


@pytest.fixture
def shared() -> SimpleCache:
    """The cache every worker shares."""
    return SimpleCache()


@pytest.fixture
def worker(app: Flask, shared: SimpleCache, statements: list[str]) -> Worker:
    """Factory: one worker's session service over the app's database and the shared cache."""

    def make(*, trusted_seconds: float = 60.0, down: bool = False, feed: bool = False) -> SessionService:
        # Each check of a worker is a request of its own: it sees what is committed by then.
        session = Session(resources(app).engine.execution_options(isolation_level="AUTOCOMMIT"))
        users = (DownUsers if down else UserRepository)(lambda: session)
        endings = SessionFeedRepository(lambda: session) if feed else None
        return SessionService(users, SessionGenerations(shared), endings, trusted_seconds=trusted_seconds)

    return make


def _user(sign_up: SignUp) -> uuid.UUID:
    return uuid.UUID(sign_up()["id"])


def test_a_generation_read_is_trusted_for_its_window_only(
    worker: Worker, sign_up: SignUp, statements: list[str]
) -> None:
    user_id = _user(sign_up)
    trusting, doubting = worker(), worker(trusted_seconds=0)
    statements.clear()
    assert [trusting.is_revoked(user_id, 0) for _ in range(3)] == [False] * 3
    assert statements == ["SELECT"]  # the first check reads; the next ones trust it
    statements.clear()
    assert [doubting.is_revoked(user_id, 0) for _ in range(3)] == [False] * 3
    assert statements == ["SELECT"] * 3


def test_an_ending_elsewhere_is_seen_when_the_trust_runs_out(
    worker: Worker, sign_up: SignUp, statements: list[str]
) -> None:
    user_id = _user(sign_up)
    other, this = worker(), worker(trusted_seconds=0)
    assert not this.is_revoked(user_id, 0)
    other.sign_out(user_id, 0)
    assert this.is_revoked(user_id, 0)
    statements.clear()
    assert this.is_revoked(user_id, 0)  # older than what it knows: refused without a query
    assert statements == []
    assert not this.is_revoked(user_id, 1)
    assert this.is_revoked(user_id, 2)  # never issued: refused too


def test_a_sign_out_needs_the_current_generation(worker: Worker, sign_up: SignUp) -> None:
    user_id = _user(sign_up)
    first, second = worker(), worker()
    first.sign_out(user_id, 0)
    with pytest.raises(TokenRevokedError):
        second.sign_out(user_id, 0)  # a racing sign-out with the same token: one wins
    second.sign_out(user_id, 1)


def test_while_the_database_is_down_only_a_known_generation_vouches(
    worker: Worker, sign_up: SignUp, shared: SimpleCache
) -> None:
    user_id = _user(sign_up)
    up = worker(trusted_seconds=0)
    assert not up.is_revoked(user_id, 0)
    # The first worker to read the account shared its generation: others can vouch with it ...
    assert not worker(down=True, trusted_seconds=0).is_revoked(user_id, 0)
    # ... but a worker that knows nothing, with nothing shared (lost, evicted), cannot tell: 503.
    shared.clear()
    with pytest.raises(DatabaseUnavailableError):
        worker(down=True, trusted_seconds=0).is_revoked(user_id, 0)
    # An ending another worker shared before the outage is refused by every worker.
    up.sign_out(user_id, 0)
    down = worker(down=True, trusted_seconds=0)
    assert down.is_revoked(user_id, 0)
    assert not down.is_revoked(user_id, 1)
    # A deleted account's tokens stay refused through the outage.
    up.account_gone(user_id)
    assert worker(down=True).is_revoked(user_id, GONE - 1)


def test_the_memo_is_bounded(shared: SimpleCache) -> None:
    generations = SessionGenerations(shared, max_users=3)
    users = [uuid.uuid4() for _ in range(5)]
    for user_id in users:
        generations.learn(user_id, 0)
    assert [generations.known(user_id) is not None for user_id in users] == [False, False, True, True, True]


def test_an_older_reading_never_replaces_a_newer_one(shared: SimpleCache) -> None:
    generations = SessionGenerations(shared)
    user_id = uuid.uuid4()
    generations.learn(user_id, 2, read_at=10.0)
    generations.learn(user_id, 1, read_at=20.0)  # a slow request's earlier read, arriving late
    known = generations.known(user_id)
    assert known is not None and (known.generation, known.seen_at) == (2, 10.0)


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move this process's clock on by some seconds (what it read grows old; nothing else changes)."""
    offset = [0.0]
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return advance


def _warmed(worker: Worker, user_id: uuid.UUID, later: Callable[[float], None]) -> SessionService:
    """A worker that remembers the account and reads the feed: its checks need no read of the account."""
    this = worker(trusted_seconds=0.5, feed=True)
    assert not this.is_revoked(user_id, 0)  # reads the account
    later(1)
    assert not this.is_revoked(user_id, 0)  # reads the feed for the first time, then the account again
    return this


def test_a_worker_reading_the_feed_reads_no_account_again(
    worker: Worker, sign_up: SignUp, statements: list[str], later: Callable[[float], None]
) -> None:
    user_id = _user(sign_up)
    this = _warmed(worker, user_id, later)
    for _ in range(3):
        later(1)  # past the trusted half second: a read is due
        statements.clear()
        assert not this.is_revoked(user_id, 0)
        assert statements == ["SELECT"]  # the feed's newest seq, nothing ended: not the account
        statements.clear()
        assert [this.is_revoked(user_id, 0) for _ in range(5)] == [False] * 5
        assert statements == []  # the feed was just read
    later(31)  # past FEED_TRUSTED_SECONDS: the account is read again even so
    statements.clear()
    assert not this.is_revoked(user_id, 0)
    assert statements.count("SELECT") == 2


def test_an_ending_elsewhere_reaches_a_worker_through_the_feed(
    app: Flask, worker: Worker, sign_up: SignUp, statements: list[str], later: Callable[[float], None]
) -> None:
    user_id, bystander = _user(sign_up), uuid.UUID(sign_up("bob@example.com")["id"])
    this = _warmed(worker, user_id, later)
    worker().sign_out(user_id, 0)  # on another worker
    later(1)
    statements.clear()
    assert this.is_revoked(user_id, 0)
    assert statements == ["SELECT", "SELECT"]  # the feed's seq and its new ending: not the account
    assert not this.is_revoked(user_id, 1)
    elsewhere = Session(resources(app).engine)
    assert UserRepository(lambda: elsewhere).delete(user_id)  # the account is deleted on another worker
    elsewhere.close()
    assert not this.is_revoked(bystander, 0)  # the bystander is read (not remembered yet)
    later(1)
    assert this.is_revoked(user_id, 1)  # the deletion came through the feed too


def test_a_worker_that_missed_endings_reads_the_accounts_again(
    worker: Worker,
    sign_up: SignUp,
    statements: list[str],
    later: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repositories.session_feed, "RETAINED_ENDINGS", 2)
    user_id = _user(sign_up)
    others = [uuid.UUID(sign_up(f"user{n}@example.com")["id"]) for n in range(3)]
    this = _warmed(worker, user_id, later)
    elsewhere = worker()
    for other in others:
        elsewhere.sign_out(other, 0)  # three endings: the feed keeps the last two
    later(1)
    statements.clear()
    assert not this.is_revoked(user_id, 0)
    assert statements == ["SELECT", "SELECT", "SELECT"]  # the feed, its (incomplete) endings, the account
