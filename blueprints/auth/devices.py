"""Device cookies: a client that signed in to an account before is not locked out by a stranger.

OWASP's "Slow down online guessing attacks with device cookies": each successful sign-in (and
sign-up, and password change) sets a cookie that names the account and a random nonce, signed by
the service. A sign-in that presents a valid cookie for the account it tries is a *trusted
device*: the per-account failure limit does not apply to it, and its failures count against its
own nonce instead (blueprints/auth/limits.py). A stranger's failures therefore lock the account
only for clients without such a cookie, and a trusted device's own failures lock only that cookie.

The cookie is itsdangerous's signed, timed serialization (salted for this purpose alone, under
JWT_SECRET_KEY) of [account id, password version, nonce]. It is trusted only for that account
id and only while the account's password is the one it was set under (docs/api.md, "Rate
limits"): a cookie of a deleted account, of another account that later took the address, or from
before a password change counts as none. Nothing is stored server-side.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import Response, after_this_request, current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

import request_state
from blueprints.auth.attempts import SIGNED_IN_ATTEMPTS, attempted_address
from blueprints.auth.tokens import current_user_id
from config import DEVICE_COOKIE_LIFETIME_KEY
from dependencies import account_service

COOKIE_NAME = "device"
COOKIE_PATH = "/api/v1/auth"
SALT = "device-cookie"
# A cookie far longer than ours is not ours; not worth verifying.
MAX_COOKIE_LENGTH = 256


@dataclass(frozen=True)
class DeviceCookie:
    """What a genuine device cookie says: the account, its password version when set, the device's nonce."""

    account_id: str
    password_version: str
    nonce: str


def serializer(secret_key: str) -> URLSafeTimedSerializer:
    """The signer of device cookies under `secret_key` (the app's JWT_SECRET_KEY)."""
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def read_cookie(signer: URLSafeTimedSerializer, value: str, max_age: timedelta) -> DeviceCookie | None:
    """The cookie's content when `signer` signed it less than `max_age` ago; None otherwise."""
    if len(value) > MAX_COOKIE_LENGTH:
        return None
    try:
        content = signer.loads(value, max_age=int(max_age.total_seconds()))
    except BadData:
        return None
    if not (isinstance(content, list) and len(content) == 3 and all(isinstance(part, str) for part in content)):
        return None  # signed by us, so never seen; a key shared with something else could do it
    return DeviceCookie(*content)


def trusted_device() -> str | None:
    """The nonce of this request's device cookie when it is valid for the account the request tries.

    None for a request without a cookie, or with one that is forged, tampered with, expired, set
    for another account, or set under a password the account no longer has. Read once per
    request (both limits and the view ask); the account is looked up only for a genuine cookie.
    """
    state = request_state.current()
    if not state.trusted_device_read:
        state.trusted_device = _nonce_of_cookie()
        state.trusted_device_read = True
    return state.trusted_device


def _nonce_of_cookie() -> str | None:
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    lifetime: timedelta = current_app.config[DEVICE_COOKIE_LIFETIME_KEY]
    cookie = read_cookie(serializer(current_app.config["JWT_SECRET_KEY"]), value, lifetime)
    if cookie is None:
        return None
    account = _attempted_account_version()
    if account is None or account != (cookie.account_id, cookie.password_version):
        return None
    return cookie.nonce


def _attempted_account_version() -> tuple[str, str] | None:
    """(account id, password version) of the account this request tries a password on, if it exists."""
    accounts = account_service()
    if request.endpoint in SIGNED_IN_ATTEMPTS:
        user_id = current_user_id()
        version = accounts.password_version(user_id)
        return None if version is None else (user_id.hex, version)
    address = attempted_address()
    found = None if address is None else accounts.password_version_by_email(address)
    return None if found is None else (found[0].hex, found[1])


def remember_device(user_id: uuid.UUID, password_version: str) -> None:
    """Set a new device cookie for this account and its password version on the response (on success).

    A fresh nonce every time, so a sign-in that succeeds starts the device's failure count
    afresh: the right password is proof enough that the failures were the owner's typos.
    """
    lifetime: timedelta = current_app.config[DEVICE_COOKIE_LIFETIME_KEY]
    content = [user_id.hex, password_version, secrets.token_urlsafe(16)]
    value = serializer(current_app.config["JWT_SECRET_KEY"]).dumps(content)
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
