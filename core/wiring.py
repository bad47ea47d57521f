"""Builds the services a request needs from this app's session, cache and hasher."""

from __future__ import annotations

from flask import current_app

from blueprints.posts.schemas import encode_listing
from core.database import db_session
from core.listing_cache import LISTING_CACHE_KEY
from repositories.posts import PostRepository
from repositories.users import UserRepository
from services.accounts import AccountService
from services.admin import AdminService
from services.passwords import Passwords
from services.posts import PostService

PASSWORDS_KEY = "posts.passwords"
SETTINGS_KEY = "posts.settings"


def account_service() -> AccountService:
    """Account rules over this request's session."""
    passwords: Passwords = current_app.extensions[PASSWORDS_KEY]
    return AccountService(UserRepository(db_session()), passwords)


def post_service() -> PostService:
    """Post rules over this request's session and the shared listing cache."""
    return PostService(PostRepository(db_session), current_app.extensions[LISTING_CACHE_KEY], encode_listing)


def admin_service() -> AdminService:
    """Operator tasks (the CLI) over this app context's session and the shared listing cache."""
    session = db_session()
    passwords: Passwords = current_app.extensions[PASSWORDS_KEY]
    users = UserRepository(session)
    return AdminService(
        AccountService(users, passwords),
        users,
        PostRepository(lambda: session),
        current_app.extensions[LISTING_CACHE_KEY],
    )
