"""This service's own per-app resources, built once by `init_resources` and reached through `resources()`.

The database (engine, session factory, breaker), the listing cache, the session generations,
the password hasher, the readiness probes and account recovery (policy and mail outbox): one
typed `AppResources` in `app.extensions`, fresh for every app. Per request, flaskr's way:
`get_db()` opens the request's database session on first use, `close_db` closes it in teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from cachelib import BaseCache
from flask import Flask, current_app
from flask_caching import Cache
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import request_state
from cache.health import RedisProbe
from cache.host import HostCache
from cache.listing import VersionedListingCache
from cache.sessions import SessionGenerations
from config import Settings
from mail.outbox import Outbox
from mail.transport import DirectoryTransport, SmtpTransport, Transport
from repositories.database import DatabaseBreaker, build_engine
from repositories.health import DatabaseProbe
from repositories.reset_tokens import MailWindow
from repositories.schema import SchemaProbe
from services.passwords import BlockingRunner, Passwords
from services.readiness import Probe, Readiness
from services.recovery import ResetPolicy

_KEY = "posts.resources"


@dataclass(frozen=True)
class AppResources:
    """Everything one app owns besides the libraries' extensions.

    `outbox` is None when no mail can go out (production without SMTP_HOST: recovery answers
    501); `app` is the app itself, since the outbox's thread prepares each mail in its context.
    """

    app: Flask
    engine: Engine
    sessions: sessionmaker[Session]
    breaker: DatabaseBreaker
    listing: VersionedListingCache
    generations: SessionGenerations
    passwords: Passwords
    readiness: Readiness
    reset_policy: ResetPolicy
    outbox: Outbox | None


def init_resources(app: Flask, settings: Settings, cache: Cache, run: BlockingRunner) -> None:
    """Build `app`'s resources (`cache` bound already; hashes run through `run`); close sessions in teardown."""
    # The backend itself rather than the Flask-Caching proxy: the retry thread has no app context.
    backend: BaseCache = app.extensions["cache"][cache]
    engine = build_engine(settings)
    bind(
        app,
        AppResources(
            app=app,
            engine=engine,
            # expire_on_commit=False: nothing is read back after a commit, so no refresh SELECTs.
            sessions=sessionmaker(engine, expire_on_commit=False),
            breaker=DatabaseBreaker.watching(engine, settings),
            listing=_listing_cache(backend, settings),
            generations=SessionGenerations(backend),
            passwords=Passwords(run=run),
            readiness=_readiness(settings),
            reset_policy=_reset_policy(settings),
            outbox=_outbox(settings),
        ),
    )
    app.teardown_appcontext(close_db)


def resources(app: Flask | None = None) -> AppResources:
    """The resources of `app` (default: the current app)."""
    found: AppResources = (app or current_app).extensions[_KEY]
    return found


def bind(app: Flask, bound: AppResources) -> None:
    """Give `app` these resources (`init_resources` does; a test may bind a variant built with `with_engine`)."""
    app.extensions[_KEY] = bound


def with_engine(base: AppResources, engine: Engine, settings: Settings | None = None) -> AppResources:
    """`base` served from `engine`, behind a breaker of its own timed by `settings` (default: the defaults)."""
    return replace(
        base,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        breaker=DatabaseBreaker.watching(engine, settings),
    )


def get_db() -> Session:
    """This request's database session, opened on first use.

    While the database is known to be down (a timeout or a failed connect in this process, until
    a probe gets through) it raises DatabaseUnavailableError (503) at once. Asking is what a
    request does before its first statement, so only requests that need the database are
    refused: a cached listing, /healthz and /readyz (its own engine) never ask.
    """
    state = request_state.current()
    if state.db_session is None:
        found = resources()
        found.breaker.admit()
        state.db_session = found.sessions()
    return state.db_session


def close_db(_error: BaseException | None = None) -> None:
    """teardown: close this request's session, if it opened one."""
    state = request_state.current()
    session, state.db_session = state.db_session, None
    if session is not None:
        try:
            session.close()
        finally:
            resources().breaker.release()


def _listing_cache(backend: BaseCache, settings: Settings) -> VersionedListingCache:
    """The listing cache on the app's cache backend; in the host store, bodies get a table of their own."""
    return VersionedListingCache(
        backend,
        settings.cache_timeout_seconds,
        settings.cache_max_entry_bytes,
        max_bytes=settings.cache_max_bytes,
        bodies=backend.sibling("bodies") if isinstance(backend, HostCache) else None,
        retry_seconds=settings.cache_retry_seconds,
    )


def _readiness(settings: Settings) -> Readiness:
    """What `/readyz` checks: the database, its schema (migrated?), Redis when configured; short timeouts."""
    timeout = settings.health_timeout_seconds
    database_url = settings.database_url.get_secret_value()
    probes: dict[str, Probe] = {
        "database": DatabaseProbe(database_url, timeout),
        "schema": SchemaProbe(database_url, timeout),
    }
    if settings.redis_url is not None:
        probes["redis"] = RedisProbe(settings.redis_url.get_secret_value(), settings.redis_timeout_seconds)
    return Readiness(probes, requires={"schema": "database"})


def _reset_policy(settings: Settings) -> ResetPolicy:
    return ResetPolicy(
        link_template=settings.password_reset_url,
        lifetime=timedelta(minutes=settings.password_reset_minutes),
        window=MailWindow(
            settings.password_reset_mails_per_window, timedelta(minutes=settings.password_reset_window_minutes)
        ),
        sender=settings.mail_from,
    )


def _outbox(settings: Settings) -> Outbox | None:
    """The mail outbox over SMTP, or files in DEV_MAIL_DIR in development; None when no mail can go out."""
    smtp = settings.smtp()
    transport: Transport | None = SmtpTransport(smtp) if smtp is not None else None
    if transport is None and settings.app_env != "production":
        transport = DirectoryTransport(Path(settings.dev_mail_dir))
    if transport is None:
        return None
    # Its thread starts on first use.
    return Outbox(transport, settings.mail_queue_size, settings.mail_attempts, settings.mail_retry_seconds)
