"""Builds the services a request (or a CLI command) works with, over the current app's resources.

Each call gives a service bound to this request's database session (opened only if used), the
app's listing cache, session generations and password hasher; views and commands ask here,
never build their own.
"""

from __future__ import annotations

from repositories.posts import PostRepository
from repositories.reset_tokens import ResetTokenRepository
from repositories.session_feed import SessionFeedRepository
from repositories.users import UserRepository
from resources import get_db, resources
from services.accounts import AccountService
from services.admin import AdminService
from services.posts import PostService
from services.readiness import Readiness
from services.recovery import RecoveryService
from services.sessions import SessionService


def session_service() -> SessionService:
    """Session rules (which tokens are still valid) over this request's session."""
    return SessionService(UserRepository(get_db), resources().generations, SessionFeedRepository(get_db))


def account_service() -> AccountService:
    """Account rules over this request's session."""
    return AccountService(UserRepository(get_db), resources().passwords, session_service(), resources().listing)


def post_service() -> PostService:
    """Post rules over this request's session and the shared listing cache."""
    return PostService(PostRepository(get_db), resources().listing, session_service())


def admin_service() -> AdminService:
    """Operator tasks (the CLI) over this app context's session and the shared listing cache."""
    return AdminService(account_service(), UserRepository(get_db), PostRepository(get_db), resources().listing)


def recovery_service() -> RecoveryService:
    """Recovery rules (reset mails and tokens) over this request's session and the app's policy."""
    return RecoveryService(ResetTokenRepository(get_db), account_service(), resources().reset_policy)


def readiness_checks() -> Readiness:
    """The readiness probes of the current app."""
    return resources().readiness
