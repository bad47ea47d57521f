"""JWT access and refresh tokens on flask-jwt-extended: issuing them, the strict checks, the views' decorator.

flask-jwt-extended issues and verifies every token. Its public hooks add what the contract asks
beyond signature and expiry: `exp`, `iat`, `sub` and the token type must be present and of the
right JSON type (`check_token_shape`, run before the signature is checked, so it can only
refuse), and access and refresh tokens never stand in for each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import current_app, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTDecodeError

import request_state
from blueprints.errors import AuthenticationError
from dependencies import session_service

# The account's session generation when the token's issuing checked its credentials or session
# (services/sessions.py); absent means 0, the generation every account starts in.
GENERATION_CLAIM = "gen"
MAX_GENERATION = 2**31 - 1
TOKEN_TYPES = ("access", "refresh")
# 9999-12-31T23:59:59Z, the last second a datetime holds.
LATEST_TIME = 253_402_300_799
P = ParamSpec("P")
R = TypeVar("R")


def issue_tokens(user_id: uuid.UUID, generation: int) -> dict[str, str]:
    """A fresh access and refresh token pair for the user, in the session generation their issuing read."""
    identity, claims = str(user_id), {GENERATION_CLAIM: generation}
    return {
        "access_token": create_access_token(identity=identity, fresh=True, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=identity, additional_claims=claims),
        "token_type": "bearer",
    }


def issue_access_token(user_id: uuid.UUID, generation: int) -> str:
    """A new access token in the refresh token's generation, as refresh hands out."""
    token: str = create_access_token(identity=str(user_id), additional_claims={GENERATION_CLAIM: generation})
    return token


def generation_of(claims: dict[str, Any]) -> int:
    """The session generation a verified token was issued in."""
    generation: int = claims.get(GENERATION_CLAIM, 0)
    return generation


def _is_time(value: object) -> bool:
    """A JSON number (never a bool or a numeric string) between 1970 and the end of year 9999, in seconds.

    NaN and infinities (Python's JSON reads them) and times no datetime can hold are malformed,
    not merely expired or immature.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= LATEST_TIME  # False for NaN too


def _names_a_user(subject: object) -> bool:
    if not isinstance(subject, str):
        return False
    try:
        uuid.UUID(subject)
    except ValueError:
        return False
    return True


def check_token_shape(_header: dict[str, Any], claims: dict[str, Any]) -> str:
    """decode_key_loader: the signing key, once the token's claims have the contract's shape.

    flask-jwt-extended does not require `exp`, fills in a missing type as "access", and PyJWT
    accepts numeric strings, booleans and times past year 9999; a token with any of these
    defects is refused here with the library's own JWTDecodeError (401). Run on the unverified
    claims, it can only refuse.
    """
    generation = claims.get(GENERATION_CLAIM, 0)
    well_formed = (
        _is_time(claims.get("exp"))
        and _is_time(claims.get("iat"))
        and ("nbf" not in claims or _is_time(claims["nbf"]))
        and isinstance(claims.get("type"), str)
        and claims["type"] in TOKEN_TYPES
        and _names_a_user(claims.get("sub"))
        and isinstance(generation, int)
        and not isinstance(generation, bool)
        and 0 <= generation <= MAX_GENERATION
    )
    if not well_formed:
        raise JWTDecodeError("Invalid token")
    key: str = current_app.config["JWT_SECRET_KEY"]
    return key


def user_id_of(_header: dict[str, Any], claims: dict[str, Any]) -> uuid.UUID:
    """user_lookup_loader: the signed-in user is their id; no database lookup on the hot path.

    A signed, unexpired token is proof enough; the id also goes to the audit log.
    """
    user_id = uuid.UUID(claims["sub"])
    request_state.current().user_id = user_id
    return user_id


def is_revoked(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """token_in_blocklist_loader: an access token is refused once its account's sessions ended or it left.

    The session rules (services/sessions.py) decide from the token's generation claim. Under a
    view marked `write_checks_the_session`, what needs the database is left to the view's write
    (`unchecked_generation`), which checks it in its own statement: one round trip fewer.
    """
    user_id, generation = uuid.UUID(claims["sub"]), generation_of(claims)
    state = request_state.current()
    if state.write_checks_session:
        verdict = session_service().verdict_from_memory(user_id, generation)
        if verdict is not None:
            return verdict
        state.unchecked_generation = generation
        return False
    return session_service().is_revoked(user_id, generation)


def write_checks_the_session(view: Callable[P, R]) -> Callable[P, R]:
    """Decorator, above the view's JWT decorator: its write checks the token's session itself.

    For views whose every path to a success is one write that honours `unchecked_generation()`
    (add-post, delete_my_post); a path that writes nothing changes nothing and reveals nothing.
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        request_state.current().write_checks_session = True
        return view(*args, **kwargs)

    return wrapper


def unchecked_generation() -> int | None:
    """The session generation the view's write must check itself, or None when the token check did."""
    return request_state.current().unchecked_generation


def register_token_checks(jwt: JWTManager) -> None:
    """Install the shape check, the revocation check and the user loader on the app's JWT manager."""
    jwt.decode_key_loader(check_token_shape)
    jwt.token_in_blocklist_loader(is_revoked)
    jwt.user_lookup_loader(user_id_of)


def verify_refresh_token(token: str) -> dict[str, Any]:
    """Claims of a valid refresh token (the `refresh-token` header); AuthenticationError otherwise."""
    claims: dict[str, Any] = decode_token(token)
    if claims["type"] != "refresh":
        raise AuthenticationError("Expected a refresh token")
    request_state.current().user_id = uuid.UUID(claims["sub"])  # for the audit log
    return claims


def jwt_required_in_header_or_body(view: Callable[P, R]) -> Callable[P, R]:
    """`jwt_required()` that also takes the access token as `"token"` in a JSON object body (add-post).

    Built on flask-jwt-extended's `verify_jwt_in_request`: the body is consulted only when there
    is no Authorization header, and only when it is a JSON object (the library's JSON lookup
    assumes one). Checked before the body is validated, so a request without credentials gets 401.
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        in_body = "Authorization" not in request.headers and isinstance(request.get_json(silent=True), dict)
        verify_jwt_in_request(locations=["json"] if in_body else ["headers"])
        return view(*args, **kwargs)

    return wrapper


def current_user_id() -> uuid.UUID:
    """The authenticated user's id (flask-jwt-extended's current user, loaded by `user_id_of`)."""
    user_id: uuid.UUID = get_current_user()
    return user_id
