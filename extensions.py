"""Flask extensions, created unbound here and bound to the app in `app.create_app`.

The libraries' own (JWT, Flask-Caching, Flask-Limiter) and four of ours, each holding its
per-app state in `app.extensions` the way Flask extensions do: the database (engine, and one
session per request), the listing cache, the password hasher and the readiness probes.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from config import Settings
from repositories.database import build_engine
from repositories.health import DatabaseProbe
from repositories.schema import SchemaProbe
from services.passwords import Passwords
from services.readiness import Probe, Readiness

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
    """One app's engine and the session factory over it."""

    engine: Engine
    sessions: sessionmaker[Session]


class Database(AppState[DatabaseState]):
    """The SQLAlchemy engine of an app, and one session per request, opened lazily, closed in teardown."""

    def __init__(self) -> None:
        super().__init__("posts.database")

    def init_app(self, app: Flask, settings: Settings) -> None:
        """Build the engine and close each request's session in teardown."""
        self.use_engine(app, build_engine(settings))
        app.teardown_appcontext(self._close_session)

    def use_engine(self, app: Flask, engine: Engine) -> None:
        """Serve `app`'s sessions from `engine`."""
        # expire_on_commit=False: nothing is read back after a commit, so no refresh SELECTs.
        self.bind(app, DatabaseState(engine, sessionmaker(engine, expire_on_commit=False)))

    def session(self) -> Session:
        """This request's session, opened on first use: a cached listing never opens one."""
        session: Session | None = g.get("db_session")
        if session is None:
            session = self.current.sessions()
            g.db_session = session
        return session

    @staticmethod
    def _close_session(_error: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.close()


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


class PasswordHasher(AppState[Passwords]):
    """The argon2id hasher sign-up and sign-in use."""

    def __init__(self) -> None:
        super().__init__("posts.passwords")

    def init_app(self, app: Flask) -> None:
        """Bind a hasher at the OWASP parameters."""
        self.bind(app, Passwords())


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
passwords = PasswordHasher()
readiness = ReadinessProbes()
