"""JWT access and refresh tokens: issued with flask-jwt-extended, verified strictly with PyJWT."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache, wraps
from typing import Any, ParamSpec, TypeVar

import jwt as pyjwt
from flask import current_app, g, request
from flask_jwt_extended import create_access_token, create_refresh_token

from core.config import Settings
from core.errors import AuthenticationError

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type"]
# `iat` has whole seconds; sign-out must tell a token issued just before it from one issued
# just after it within the same second, so refresh tokens also carry microseconds.
ISSUED_AT_US_CLAIM = "iat_us"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Tokens already verified, per process. A client reuses its access token for up to an hour,
# and PyJWT's checks cost far more than the rest of a cached get_my_posts (~100 us); 4096
# entries of a few hundred bytes each bound the memory at about 2 MiB.
VERIFIED_TOKENS_MAX = 4096
P = ParamSpec("P")
R = TypeVar("R")


def jwt_config(settings: Settings) -> dict[str, Any]:
    """flask-jwt-extended settings: HS256 only, string identities, configurable lifetimes."""
    return {
        "JWT_SECRET_KEY": settings.jwt_secret_key,
        "JWT_ALGORITHM": ALGORITHM,
        "JWT_DECODE_ALGORITHMS": [ALGORITHM],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=settings.access_token_minutes),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=settings.refresh_token_days),
        "JWT_TOKEN_LOCATION": ["headers"],
        # Tokens travel in headers only, so the cookie CSRF claim would be dead weight.
        "JWT_COOKIE_CSRF_PROTECT": False,
    }


def issue_tokens(user_id: uuid.UUID) -> dict[str, str]:
    """A fresh access and refresh token pair for the user."""
    identity = str(user_id)
    issued_us = (datetime.now(UTC) - EPOCH) // timedelta(microseconds=1)
    return {
        "access_token": create_access_token(identity=identity, fresh=True),
        "refresh_token": create_refresh_token(identity=identity, additional_claims={ISSUED_AT_US_CLAIM: issued_us}),
        "token_type": "bearer",
    }


def issue_access_token(user_id: uuid.UUID) -> str:
    """A new access token, as refresh hands out."""
    token: str = create_access_token(identity=str(user_id))
    return token


def verify_token(token: str, expected_type: str) -> dict[str, Any]:
    """Claims of a valid token of `expected_type`; AuthenticationError for anything else.

    Only HS256 is accepted (no `none`, no algorithm confusion), `exp`, `iat`, `sub` and the
    token type are required, and access and refresh tokens never stand in for each other.
    A token that passed these checks once is remembered with its claims (keyed by the signing
    key too); only the expiry, the one check whose answer changes with time, runs again.
    """
    claims = dict(_verified_claims(token, current_app.config["JWT_SECRET_KEY"]))
    if claims["exp"] <= time.time():
        raise AuthenticationError("Token has expired")
    if claims.get("type") != expected_type:
        raise AuthenticationError(f"Expected a {expected_type} token")
    return claims


@lru_cache(maxsize=VERIFIED_TOKENS_MAX)
def _verified_claims(token: str, key: str) -> tuple[tuple[str, Any], ...]:
    """Claims (plus `user_id`) of a correctly signed, well-formed token; raises, so caches nothing, otherwise."""
    try:
        claims: dict[str, Any] = pyjwt.decode(token, key, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS})
    except pyjwt.ExpiredSignatureError as exc:
        raise AuthenticationError("Token has expired") from exc
    except pyjwt.PyJWTError as exc:
        raise AuthenticationError("Invalid token") from exc
    try:
        claims["user_id"] = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise AuthenticationError("Invalid token") from exc
    # An immutable snapshot, so no caller can alter what the next request sees.
    return tuple(claims.items())


def issued_at(claims: dict[str, Any]) -> datetime:
    """When a verified token was issued, to the microsecond when it says so.

    A token without the microsecond claim counts as issued at the start of its `iat` second,
    so a sign-out in that same second still revokes it (refusing too much, never too little).
    """
    micro = claims.get(ISSUED_AT_US_CLAIM)
    if isinstance(micro, int) and not isinstance(micro, bool):
        try:
            return EPOCH + timedelta(microseconds=micro)
        except OverflowError as exc:
            raise AuthenticationError("Invalid token") from exc
    iat = claims["iat"]
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise AuthenticationError("Invalid token")
    try:
        return EPOCH + timedelta(seconds=int(iat))
    except OverflowError as exc:
        raise AuthenticationError("Invalid token") from exc


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, None when the header is absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def body_token() -> str | None:
    """The `"token"` key of a JSON object body (add-post accepts the token there too)."""
    payload = request.get_json(silent=True)
    token = payload.get("token") if isinstance(payload, dict) else None
    return token if isinstance(token, str) else None


def access_token_required(*, allow_body_token: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the view runs only for a valid access token; its user id goes to `g.user_id`.

    Checked before the body is validated, so a request without credentials gets 401, as before.
    The user is not looked up: a signed, unexpired token is proof enough for the hot path.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = bearer_token()
            if token is None and allow_body_token:
                token = body_token()
            if token is None:
                raise AuthenticationError("Not authenticated")
            g.user_id = verify_token(token, "access")["user_id"]
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_user_id() -> uuid.UUID:
    """The authenticated user's id, set by `access_token_required`."""
    user_id: uuid.UUID = g.user_id
    return user_id
