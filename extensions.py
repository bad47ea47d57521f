"""Flask extensions, created unbound here and bound to the app in `app.create_app`.

The libraries' own (JWT, Flask-Caching, Flask-Limiter) and six of ours, each holding its
per-app state in `app.extensions` the way Flask extensions do: the database (engine, and one
session per request), the listing cache, the session generations, the password hasher, the
readiness probes and account recovery (its policy and mail outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from cachelib import BaseCache
from flask import Flask, current_app, g
from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cache.health import RedisProbe
from cache.listing import MEMO_MAX_BYTES, VersionedListingCache
from cache.sessions import SessionGenerations
from config import Settings
from mail.outbox import Outbox
from mail.transport import LogTransport, SmtpTransport, Transport
from repositories.database import DatabaseBreaker, build_engine
from repositories.health import DatabaseProbe
from repositories.reset_tokens import MailWindow
from repositories.schema import SchemaProbe
from services.passwords import BlockingRunner, Passwords
from services.readiness import Probe, Readiness
from services.recovery import ResetPolicy

T = TypeVar("T")


class AppState(Generic[T]):
    """An extension whose per-app state lives in `app.extensions[name]`, reached through the object."""

    def __init__(self, name: str) -> None:
        self.name = name

    def bind(self, app: Flask, state: T) -> None:
        """Give `app` this state (init_app does; a test may bind a stand-in)."""
        app.extensions[self.name] = state

    def of(self, app: Flask) -> T:
        """The state bound to `app`."""
        state: T = app.extensions[self.name]
        return state

    @property
    def current(self) -> T:
        """The state bound to the current app."""
        return self.of(current_app)


@dataclass(frozen=True)
class DatabaseState:
    """One app's engine, the session factory over it, and the breaker that watches it."""

    engine: Engine
    sessions: sessionmaker[Session]
    breaker: DatabaseBreaker


class Database(AppState[DatabaseState]):
    """The SQLAlchemy engine of an app, and one session per request, opened lazily, closed in teardown.

    While the database is known to be down (a timeout or a failed connect in this process, until
    a probe gets through), asking for a session raises DatabaseUnavailableError (503) at once.
    Asking is what a request does before its first statement, so only requests that need the
    database are refused: a cached listing, /healthz and /readyz (its own engine) never ask.
    """

    def __init__(self) -> None:
        super().__init__("posts.database")

    def init_app(self, app: Flask, settings: Settings) -> None:
        """Build the engine and close each request's session in teardown."""
        self.use_engine(app, build_engine(settings), settings)
        app.teardown_appcontext(self._close_session)

    def use_engine(self, app: Flask, engine: Engine, settings: Settings | None = None) -> None:
        """Serve `app`'s sessions from `engine`, behind a breaker timed by `settings` (default: the defaults)."""
        # expire_on_commit=False: nothing is read back after a commit, so no refresh SELECTs.
        sessions = sessionmaker(engine, expire_on_commit=False)
        self.bind(app, DatabaseState(engine, sessions, DatabaseBreaker.watching(engine, settings)))

    def session(self) -> Session:
        """This request's session, opened on first use; DatabaseUnavailableError while the database is down."""
        session: Session | None = g.get("db_session")
        if session is None:
            state = self.current
            state.breaker.admit()
            session = state.sessions()
            g.db_session = session
        return session

    def _close_session(self, _error: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            try:
                session.close()
            finally:
                self.current.breaker.release()


class ListingCache(AppState[VersionedListingCache]):
    """The versioned per-user listing cache over Flask-Caching's backend."""

    def __init__(self) -> None:
        super().__init__("posts.listing_cache")

    def init_app(self, app: Flask, settings: Settings, flask_cache: Cache) -> None:
        """Bind Flask-Caching, then build the listing cache on its backend."""
        flask_cache.init_app(app)
        # The backend itself rather than the Flask-Caching proxy: the retry thread has no app context.
        backend: BaseCache = app.extensions["cache"][flask_cache]
        listing = VersionedListingCache(
            backend,
            settings.cache_timeout_seconds,
            settings.cache_max_entry_bytes,
            retry_seconds=settings.cache_retry_seconds,
            # `simple` already lives in the process: a memo of it would hold each body twice.
            memo_max_bytes=0 if settings.cache_backend == "simple" else MEMO_MAX_BYTES,
        )
        self.bind(app, listing)


class SessionStore(AppState[SessionGenerations]):
    """What this process knows of each account's session generation, over the cache's backend."""

    def __init__(self) -> None:
        super().__init__("posts.sessions")

    def init_app(self, app: Flask, flask_cache: Cache) -> None:
        """Build the store on Flask-Caching's backend (bound already by the listing cache)."""
        self.bind(app, SessionGenerations(app.extensions["cache"][flask_cache]))


class PasswordHashing(AppState[Passwords]):
    """The argon2id hasher sign-up and sign-in use."""

    def __init__(self) -> None:
        super().__init__("posts.passwords")

    def init_app(self, app: Flask, run: BlockingRunner) -> None:
        """Bind a hasher at the OWASP parameters that hashes through `run` (the server's way to block)."""
        self.bind(app, Passwords(run=run))


class ReadinessProbes(AppState[Readiness]):
    """What `/readyz` checks: the database, its schema (migrated?), Redis when configured; short timeouts."""

    def __init__(self) -> None:
        super().__init__("posts.readiness")

    def init_app(self, app: Flask, settings: Settings) -> None:
        """Build the probes for this app's database and Redis."""
        timeout = settings.health_timeout_seconds
        database_url = settings.database_url.get_secret_value()
        probes: dict[str, Probe] = {
            "database": DatabaseProbe(database_url, timeout),
            "schema": SchemaProbe(database_url, timeout),
        }
        if settings.redis_url is not None:
            probes["redis"] = RedisProbe(settings.redis_url.get_secret_value(), settings.redis_timeout_seconds)
        self.bind(app, Readiness(probes, requires={"schema": "database"}))


@dataclass(frozen=True)
class RecoveryState:
    """One app's recovery policy, and its outbox (None: recovery is not configured, the endpoints answer 501).

    `app` is the app itself: the outbox's thread runs each mail's preparation in its context.
    """

    app: Flask
    policy: ResetPolicy
    outbox: Outbox | None


class Recovery(AppState[RecoveryState]):
    """Account recovery: the reset policy and the mail outbox over SMTP (or the log, in development)."""

    def __init__(self) -> None:
        super().__init__("posts.recovery")

    def init_app(self, app: Flask, settings: Settings) -> None:
        """Build the policy and, when mail can go out, the outbox (its thread starts on first use)."""
        policy = ResetPolicy(
            link_template=settings.password_reset_url,
            lifetime=timedelta(minutes=settings.password_reset_minutes),
            window=MailWindow(
                settings.password_reset_mails_per_window, timedelta(minutes=settings.password_reset_window_minutes)
            ),
            sender=settings.mail_from,
        )
        smtp = settings.smtp()
        transport: Transport | None = SmtpTransport(smtp) if smtp is not None else None
        if transport is None and settings.app_env != "production":
            transport = LogTransport()
        outbox = None
        if transport is not None:
            outbox = Outbox(transport, settings.mail_queue_size, settings.mail_attempts, settings.mail_retry_seconds)
        self.bind(app, RecoveryState(app, policy, outbox))


jwt = JWTManager()
flask_cache = Cache()
# Per app: on/off and storage (RATELIMIT_* config). Fixed here: a moving window (no double
# burst at a window edge), no X-RateLimit-* headers (429 gets Retry-After from our handler),
# and if the shared storage fails, per-process memory counters instead of an error.
limiter = Limiter(
    get_remote_address,
    strategy="moving-window",
    headers_enabled=False,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    key_prefix="posts-api-limits",
)
db = Database()
listing_cache = ListingCache()
sessions = SessionStore()
passwords = PasswordHashing()
readiness = ReadinessProbes()
recovery = Recovery()
