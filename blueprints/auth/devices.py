"""Device cookies: a client that signed in to an account before is not locked out by a stranger.

OWASP's "Slow down online guessing attacks with device cookies": each successful sign-in (and
sign-up) sets a cookie that names the account and a random nonce, signed by the service. A
sign-in that presents a valid cookie for the account it names is a *trusted device*: the
per-account failure limit does not apply to it, and its failures count against its own nonce
instead (blueprints/auth/limits.py). A stranger's failures therefore lock the account only for
clients without such a cookie, and a trusted device's own failures lock only that cookie.

The cookie is `<account>.<nonce>.<expires>.<signature>`: the account's keyed fingerprint (never
the email), 128 random bits, the expiry in Unix seconds, and an HMAC-SHA256 over the first three
under a key derived from JWT_SECRET_KEY for this purpose alone. Nothing is stored server-side;
a forged, tampered, expired or other account's cookie counts as none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from flask import Response, after_this_request, current_app, g, request

from blueprints.auth.attempts import account_fingerprint, attempted_account, derived_key
from config import DEVICE_COOKIE_LIFETIME_KEY

COOKIE_NAME = "device"
COOKIE_PATH = "/api/v1/auth"
KEY_PURPOSE = "device-cookie"
# A cookie far longer than ours is not ours; not worth parsing.
MAX_COOKIE_LENGTH = 256


def _signature(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_cookie(key: bytes, account: str, nonce: str, expires: int) -> str:
    """The signed cookie value for `account` (a fingerprint) with this nonce and expiry."""
    payload = f"{account}.{nonce}.{expires}"
    return f"{payload}.{_signature(key, payload)}"


def nonce_of(key: bytes, value: str, account: str, now: float) -> str | None:
    """The nonce of `value` when it is a cookie this key signed for `account` and not yet expired; else None."""
    if len(value) > MAX_COOKIE_LENGTH or not value.isascii():
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    named, nonce, expires, signature = parts
    if not hmac.compare_digest(signature, _signature(key, f"{named}.{nonce}.{expires}")):
        return None
    # Signed by us, so well formed; the checks below are what a genuine cookie can still fail.
    if not hmac.compare_digest(named, account) or not expires.isdigit() or int(expires) <= now:
        return None
    return nonce


def trusted_device() -> str | None:
    """The nonce of this request's device cookie when it is valid for the account the request names.

    None for a request without a cookie, or with one that is forged, tampered with, expired, or
    set by a sign-in to another account. Read once per request (both limits and the view ask).
    """
    if "trusted_device" not in g:
        value = request.cookies.get(COOKIE_NAME)
        nonce = None
        if value:
            nonce = nonce_of(derived_key(KEY_PURPOSE), value, attempted_account(), time.time())
        g.trusted_device = nonce
    trusted: str | None = g.trusted_device
    return trusted


def remember_device(email_address: str) -> None:
    """Set a new device cookie for this account on the response (a view calls it on success).

    A fresh nonce every time, so a sign-in that succeeds starts the device's failure count
    afresh: the right password is proof enough that the failures were the owner's typos.
    """
    lifetime: timedelta = current_app.config[DEVICE_COOKIE_LIFETIME_KEY]
    expires = int(time.time() + lifetime.total_seconds())
    value = make_cookie(
        derived_key(KEY_PURPOSE), account_fingerprint(email_address), secrets.token_urlsafe(16), expires
    )
    # Secure only over HTTPS: with plain HTTP (development, tests) the browser would drop it.
    # request.is_secure believes X-Forwarded-Proto only behind TRUSTED_PROXY_HOPS (app.py).
    secure = request.is_secure

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=lifetime,
            path=COOKIE_PATH,
            secure=secure,
            httponly=True,
            samesite="Strict",
        )
        return response
