"""What a sign-in or sign-up attempt names: the email it tries, reduced to a keyed fingerprint.

The rate limiter counts failures per account and the audit log correlates attempts on one
account; neither needs (nor should store) the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from flask import current_app, request

import request_state
from blueprints.auth.tokens import current_user_id
from dependencies import account_service
from services.accounts import InvalidEmailError, normalize_email

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NO_EMAIL = "no-email"
# Endpoints that check the signed-in user's password: their failures count like sign-in's.
SIGNED_IN_ATTEMPTS = ("auth.change_password", "auth.delete_account")


def account_fingerprint(email_address: str) -> str:
    """A keyed hash of the normalized email: the same account always maps to the same value.

    Normalized like sign-in does, so case or Unicode variants of one address share one
    counter. Keyed (HMAC) so log readers cannot confirm a guessed address by hashing it.
    """
    try:
        normalized = normalize_email(email_address)
    except InvalidEmailError:
        normalized = email_address.strip().lower()
    key = derived_key("account-fingerprint")
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()[:32]


def derived_key(purpose: str) -> bytes:
    """A key for one purpose, derived from the app's signing key: one key, one purpose.

    The fingerprints and the device cookies never use the JWT signing key itself, nor each
    other's key; rotating JWT_SECRET_KEY rotates them all.
    """
    return _derive(purpose, current_app.config["JWT_SECRET_KEY"])


@lru_cache(maxsize=8)
def _derive(purpose: str, signing_key: str) -> bytes:
    return hashlib.sha256(purpose.encode() + b":" + signing_key.encode()).digest()


def attempted_account() -> str:
    """Fingerprint of the account this request tries a password on, or "no-email".

    Sign-in names it in its form or JSON body, read without validation (the view validates):
    a limit must apply even to requests that will fail. A password change or an account
    deletion tries the signed-in user's own password, so it counts against the same account.
    Kept in the request state, since the limiter and the audit log both ask.
    """
    state = request_state.current()
    if state.attempted_account is None:
        email = _signed_in_email() if request.endpoint in SIGNED_IN_ATTEMPTS else attempted_email()
        state.attempted_account = account_fingerprint(email) if email else NO_EMAIL
    return state.attempted_account


def _signed_in_email() -> str | None:
    """The email of the signed-in user (the view is behind jwt_required); None if the account is gone."""
    user = account_service().find(current_user_id())
    return None if user is None else user.email_address


def attempted_email() -> str | None:
    """The email a sign-in's form or JSON body names, as sent (unvalidated); None when it names none."""
    if request.mimetype in FORM_TYPES:
        value: object = request.form.get("username")
    else:
        payload = request.get_json(silent=True, force=True)
        value = None
        if isinstance(payload, dict):
            value = payload.get("email_address", payload.get("email"))
    return value if isinstance(value, str) and value.strip() else None
