"""Builds the services a request (or a CLI command) works with, over the current app's extensions.

Each call gives a service bound to this request's database session (opened only if used) and
the app's listing cache and password hasher; views and commands ask here, never build their own.
"""

from __future__ import annotations

from extensions import db, listing_cache, passwords, readiness
from repositories.posts import PostRepository
from repositories.users import UserRepository
from services.accounts import AccountService
from services.admin import AdminService
from services.posts import PostService
from services.readiness import Readiness


def account_service() -> AccountService:
    """Account rules over this request's session."""
    return AccountService(UserRepository(db.session), passwords.current)


def post_service() -> PostService:
    """Post rules over this request's session and the shared listing cache."""
    return PostService(PostRepository(db.session), listing_cache.current)


def admin_service() -> AdminService:
    """Operator tasks (the CLI) over this app context's session and the shared listing cache."""
    users = UserRepository(db.session)
    return AdminService(
        AccountService(users, passwords.current), users, PostRepository(db.session), listing_cache.current
    )


def readiness_checks() -> Readiness:
    """The readiness probes of the current app."""
    return readiness.current
