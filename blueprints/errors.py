"""The one place that turns every failure into the contract's JSON error shape.

`DOMAIN_ERRORS` is the table from the service layer's refusals to HTTP; the handlers below cover
the rest: Werkzeug's HTTP errors, schema mismatches (422), rate limits (429), tokens (401 from
flask-jwt-extended's loaders), an unreachable or unmigrated database (503 "Database unavailable"),
a busy moment (503 "Server busy": a lock wait, no pooled connection free) and anything unexpected (500).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_limiter.errors import RateLimitExceeded
from jwt import PyJWTError
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

import request_state
from blueprints.middleware.body_limit import CLOSE_AFTER_RESPONSE
from blueprints.middleware.request_id import request_id
from extensions import limiter
from repositories.database import DatabaseUnavailableError, is_busy
from repositories.schema import UPGRADE_COMMAND, is_missing_schema, missing_schema_cause
from services.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidResetTokenError,
    PasswordMismatchError,
    PostNotFoundError,
    RecoveryNotConfiguredError,
    TokenRevokedError,
    UnknownUserError,
)

log = logging.getLogger(__name__)

# What each refusal of the service layer answers: status and the `error` message.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    EmailTakenError: (400, "Email already exists"),
    PasswordMismatchError: (400, "confirm_password does not match password"),
    InvalidCredentialsError: (401, "Incorrect email or password"),
    UnknownUserError: (401, "User no longer exists"),
    TokenRevokedError: (401, "Token has been revoked"),
    PostNotFoundError: (404, "Post not found"),
    InvalidResetTokenError: (400, "Invalid or expired reset token"),
    RecoveryNotConfiguredError: (501, "Password reset by email is not configured"),
}

RETRY_AFTER_SECONDS = "5"
# A busy moment passes quickly (a lock held by someone else, every pooled connection in use).
BUSY_RETRY_AFTER_SECONDS = "1"
DATABASE_UNAVAILABLE = "Database unavailable, retry later"
SERVER_BUSY = "Server busy, retry later"
TOO_MANY_ATTEMPTS = "Too many attempts, try again later"
SCHEMA_NOT_MIGRATED = f"Database schema is not migrated: run `{UPGRADE_COMMAND}`"
# webargs names locations after the request part; FastAPI clients expect these names.
LOCATION_NAMES = {"json": "body", "form": "body", "headers": "header"}


class ApiError(Exception):
    """An error the HTTP layer raises on purpose, with its status and message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class AuthenticationError(ApiError):
    """401 for every token failure; error_response adds `WWW-Authenticate: Bearer` to all 401s."""

    def __init__(self, message: str) -> None:
        super().__init__(401, message)


def json_response(body: object, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response encoded like every other body of the app (compact, keys in the order given)."""
    return Response(current_app.json.dumps(body), status=status, headers=headers, mimetype="application/json")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """`{"error": message}` with the given status; 401s always carry the Bearer challenge."""
    response = json_response({"error": message}, status, headers)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def validation_response(messages: Any, location: str | None = None) -> Response:
    """422 `{"status_code", "error", "extra"}`, one "location.field: message" line per problem.

    webargs keys its messages by location first (`location=None`); a schema loaded by hand
    passes the location its data came from.
    """
    if location is None and isinstance(messages, Mapping):
        extra = [
            line
            for where, problems in messages.items()
            for line in _flatten(problems, LOCATION_NAMES.get(str(where), str(where)))
        ]
    else:
        extra = list(_flatten(messages, location or "body"))
    return json_response({"status_code": 422, "error": "Validation error", "extra": extra}, 422)


def _flatten(messages: Any, prefix: str) -> Iterator[str]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flatten(value, prefix if key == "_schema" else f"{prefix}.{key}")
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, prefix)
    else:
        yield f"{prefix}: {messages}"


def _handle_http_exception(error: HTTPException) -> Response:
    data = getattr(error, "data", None) or {}
    if error.code in (400, 422) and "messages" in data:
        # webargs reports unparseable JSON as 400; the contract says 422 for every schema mismatch.
        return validation_response(data["messages"])
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    status = error.code or 500
    if status in (413, 501):
        # The rest of a body (oversized, or in a coding not read) may still be on its way: the
        # server closes the connection.
        request.environ[CLOSE_AFTER_RESPONSE] = True
    return error_response(status, error.description or error.name, headers)


def _handle_rate_limited(_error: RateLimitExceeded) -> Response:
    return error_response(429, TOO_MANY_ATTEMPTS, {"Retry-After": str(retry_after_seconds())})


def retry_after_seconds() -> int:
    """Whole seconds until the limit this request broke lets the next attempt through (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return 1
    window = breached.limit.get_expiry()
    try:
        wait = breached.window[0] - time.time()
    except Exception:  # the counter store failed after the breach; the whole window is a safe answer
        log.warning("rate limit storage unavailable for Retry-After", exc_info=True)
        wait = window
    return min(window, max(1, math.ceil(wait)))


def _handle_unexpected(error: Exception) -> Response:
    request_state.current().error_type = type(error).__name__  # for the audit line
    log.exception("unhandled error (request %s)", request_id())
    return error_response(500, "Internal server error")


def _handle_database_down(error: Exception) -> Response:
    _unavailable(error, "database")
    log.error("database unavailable: %s (request %s)", type(error).__name__, request_id())
    return error_response(503, DATABASE_UNAVAILABLE, {"Retry-After": RETRY_AFTER_SECONDS})


def _handle_busy(error: Exception) -> Response:
    # This request alone could not be served in time (a lock wait, a deadlock, no pooled
    # connection free): the database is healthy, so no outage is logged and no breaker opens.
    _unavailable(error, "busy")
    log.warning("server busy: %s (request %s)", _busy_reason(error), request_id())
    return error_response(503, SERVER_BUSY, {"Retry-After": BUSY_RETRY_AFTER_SECONDS})


def _busy_reason(error: Exception) -> str:
    if isinstance(error, PoolTimeoutError):
        return "no pooled database connection came free in time"
    original = getattr(error, "orig", None)
    return f"{type(original or error).__name__} {original.args[0] if original and original.args else ''}".strip()


def _unavailable(error: Exception, cause: str) -> None:
    """Note why this request gets its 503, for the audit line and the metrics."""
    state = request_state.current()
    state.error_type = type(error).__name__
    state.unavailable_cause = cause


def _handle_pool_timeout(error: PoolTimeoutError) -> Response:
    return _handle_busy(error) if is_busy(error) else _handle_database_down(error)


def _handle_schema_not_migrated(error: DBAPIError) -> Response:
    _unavailable(error, "database")
    log.error(
        "database schema not migrated (%s: %s); run `%s` (request %s)",
        type(error).__name__,
        missing_schema_cause(error),
        UPGRADE_COMMAND,
        request_id(),
    )
    return error_response(503, SCHEMA_NOT_MIGRATED, {"Retry-After": RETRY_AFTER_SECONDS})


def _handle_database_known_down(error: DatabaseUnavailableError) -> Response:
    # Refused without trying: the breaker logged the outage once when it opened, and the audit
    # log has a line per refused request, so no error line here.
    _unavailable(error, "database")
    return error_response(503, DATABASE_UNAVAILABLE, {"Retry-After": RETRY_AFTER_SECONDS})


def _handle_dbapi_error(error: DBAPIError) -> Response:
    # A missing table is no outage: say what is wrong, or operators chase a healthy database.
    if isinstance(error, OperationalError | ProgrammingError) and is_missing_schema(error):
        return _handle_schema_not_migrated(error)
    if is_busy(error):
        return _handle_busy(error)
    if error.connection_invalidated or isinstance(error, OperationalError):
        return _handle_database_down(error)
    return _handle_unexpected(error)


def _domain_error(error: Exception) -> Response:
    status, message = next(DOMAIN_ERRORS[kind] for kind in type(error).__mro__ if kind in DOMAIN_ERRORS)
    return error_response(status, message)


def register_error_handlers(app: Flask, jwt: JWTManager) -> None:
    """Bind every handler; called after the extensions so ours override their HTML/`{"msg"}` defaults."""
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
    app.register_error_handler(ApiError, lambda e: error_response(e.status, e.message, e.headers))
    app.register_error_handler(ValidationError, lambda e: validation_response(e.messages, "body"))
    for error_type in DOMAIN_ERRORS:
        app.register_error_handler(error_type, _domain_error)
    app.register_error_handler(RateLimitExceeded, _handle_rate_limited)
    app.register_error_handler(PoolTimeoutError, _handle_pool_timeout)
    app.register_error_handler(DatabaseUnavailableError, _handle_database_known_down)
    app.register_error_handler(DBAPIError, _handle_dbapi_error)
    register_token_errors(app, jwt)


def register_token_errors(app: Flask, jwt: JWTManager) -> None:
    """Every token failure is the contract's 401, whichever flask-jwt-extended loader reports it.

    Its defaults answer 422 or 401 `{"msg"}`; the catch-alls cover errors raised outside a loader.
    """
    jwt.unauthorized_loader(lambda _reason: error_response(401, "Not authenticated"))
    jwt.invalid_token_loader(lambda _reason: error_response(401, "Invalid token"))
    jwt.expired_token_loader(lambda _header, _claims: error_response(401, "Token has expired"))
    jwt.revoked_token_loader(lambda _header, _claims: error_response(401, "Token has been revoked"))
    jwt.token_verification_failed_loader(lambda _header, _claims: error_response(401, "Invalid token"))
    jwt.needs_fresh_token_loader(lambda _header, _claims: error_response(401, "Fresh token required"))
    jwt.user_lookup_error_loader(lambda _header, _claims: error_response(401, "User no longer exists"))
    app.register_error_handler(PyJWTError, lambda _e: error_response(401, "Invalid token"))
    app.register_error_handler(JWTExtendedException, lambda _e: error_response(401, "Invalid token"))
