"""Builds the services a request (or a CLI command) works with, over the current app's extensions.

Each call gives a service bound to this request's database session (opened only if used), this
request's view of the per-user cache (each user's state read once) and the app's password hasher;
views and commands ask here, never build their own.
"""

from __future__ import annotations

from flask import g

from cache.request_view import RequestCacheView
from extensions import db, listing_cache, passwords, readiness
from repositories.posts import PostRepository
from repositories.users import UserRepository
from services.accounts import AccountService
from services.admin import AdminService
from services.posts import PostService
from services.readiness import Readiness
from services.sessions import SessionService


def _cache_view() -> RequestCacheView:
    """This request's view of the per-user cache, made on first use."""
    view: RequestCacheView | None = g.get("cache_view")
    if view is None:
        view = g.cache_view = RequestCacheView(listing_cache.current)
    return view


def session_service() -> SessionService:
    """Session rules (which tokens are still valid) over this request's session and cache view."""
    return SessionService(UserRepository(db.session), _cache_view())


def account_service() -> AccountService:
    """Account rules over this request's session."""
    return AccountService(UserRepository(db.session), passwords.current, session_service(), _cache_view())


def post_service() -> PostService:
    """Post rules over this request's session and the shared listing cache."""
    return PostService(PostRepository(db.session), _cache_view())


def admin_service() -> AdminService:
    """Operator tasks (the CLI) over this app context's session and the shared listing cache."""
    return AdminService(account_service(), UserRepository(db.session), PostRepository(db.session), _cache_view())


def readiness_checks() -> Readiness:
    """The readiness probes of the current app."""
    return readiness.current
