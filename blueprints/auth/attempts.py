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
from services.emails import EmailAddress, email_or_none

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NO_EMAIL = "no-email"
# Endpoints that check the signed-in user's password: their failures count like sign-in's.
SIGNED_IN_ATTEMPTS = ("auth.change_password", "auth.delete_account")


def account_fingerprint(key: str) -> str:
    """A keyed hash of an account's key (its normalized email): the same account always maps to the same value.

    Keyed (HMAC) so log readers cannot confirm a guessed address by hashing it.
    """
    return hmac.new(derived_key("account-fingerprint"), key.encode(), hashlib.sha256).hexdigest()[:32]


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
    a limit must apply even to requests that will fail. Case and Unicode variants of one
    address are one account (attempted_address). A text that is no valid address names no
    account, but still gets a counter of its own. A password change or an account deletion
    tries the signed-in user's own password, so it counts against the same account. Kept in
    the request state, since the limiter and the audit log both ask.
    """
    state = request_state.current()
    if state.attempted_account is None:
        state.attempted_account = _fingerprint_of_attempt()
    return state.attempted_account


def _fingerprint_of_attempt() -> str:
    if request.endpoint in SIGNED_IN_ATTEMPTS:
        stored = _signed_in_email()
        return NO_EMAIL if stored is None else account_fingerprint(stored)
    address = attempted_address()
    if address is not None:
        return account_fingerprint(address)
    text = attempted_email()
    return NO_EMAIL if text is None else account_fingerprint(text.strip().lower())


def _signed_in_email() -> str | None:
    """The stored (normalized) email of the signed-in user (the view is behind jwt_required); None if gone."""
    user = account_service().find(current_user_id())
    return None if user is None else user.email_address


def attempted_address() -> EmailAddress | None:
    """The normal form of the email a sign-in's body names; None when it names none or no valid address.

    Normalized once per request (services/emails.py), for the view, the failed-sign-in limit's
    key and the device cookie alike.
    """
    state = request_state.current()
    if not state.attempted_address_read:
        text = attempted_email()
        state.attempted_address = None if text is None else email_or_none(text)
        state.attempted_address_read = True
    return state.attempted_address


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
