"""The audit log: one record per security-relevant outcome, on the `posts.audit` logger.

Logged: sign-up, sign-in (success and failure), refresh, sign-out, password change, account
deletion, reset mail requests and password resets, every other 401/403/429, and every 5xx.
Each line has the request id, the client address, the user id when known and, for sign-up,
sign-in and reset mail requests, a keyed fingerprint of the email (blueprints.auth.attempts),
never the address.
Nothing from a request body or a header value other than the request id is written, so
passwords, tokens and post text cannot appear.

The record's fields go through the service's one log handler (observability.logs): in
production each record is one JSON object per line, like every other log line.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request

import request_state
from blueprints.auth.attempts import attempted_account
from blueprints.middleware.request_id import request_id

LOGGER_NAME = "posts.audit"
log = logging.getLogger(LOGGER_NAME)

# Endpoint -> event name for success; a failure there is "<event>_failed".
AUTH_EVENTS = {
    "auth.sign_up": "sign_up",
    "auth.sign_in": "sign_in",
    "auth.refresh_token": "refresh",
    "auth.sign_out": "sign_out",
    "auth.change_password": "password_changed",
    "auth.delete_account": "account_deleted",
    "auth.forgot_password": "password_reset_requested",
    "auth.reset_password": "password_reset",
}
# The success statuses of audited endpoints (a reset mail request is accepted, 202).
SUCCESS_STATUSES = (200, 202)
# Failures whose 401/429 messages are fixed strings of ours, safe and useful to log as the reason.
REASON_STATUSES = (401, 403, 429)
ACCOUNT_ENDPOINTS = ("auth.sign_up", "auth.sign_in", "auth.forgot_password")
MAX_PATH = 200


def event_name(endpoint: str | None, status: int) -> str | None:
    """The audit event of a response, or None when it is not one to log."""
    if status >= 500:
        return "server_error"
    auth_event = AUTH_EVENTS.get(endpoint or "")
    if auth_event is not None:
        return auth_event if status in SUCCESS_STATUSES else f"{auth_event}_failed"
    if status in (401, 403):
        return "authorization_failed"
    if status == 429:
        return "rate_limited"
    return None


def audit_response(response: Response) -> Response:
    """after_request hook: write the audit line for this response, if it is an audited outcome.

    Never fails the request: a problem here is logged, and the response goes out unchanged.
    """
    try:
        event = event_name(request.endpoint, response.status_code)
        if event is not None:
            log.info(event, extra=_record(event, response))
    except Exception:
        logging.getLogger(__name__).exception("audit log failed (request %s)", request_state.current().request_id)
    return response


def _record(event: str, response: Response) -> dict[str, Any]:
    status = response.status_code
    record: dict[str, Any] = {
        "event": event,
        "request_id": request_id(),
        "method": request.method,
        "path": request.path[:MAX_PATH],
        "status": status,
        "client": request.remote_addr,
    }
    state = request_state.current()
    user_id = state.user_id
    if user_id is not None:
        record["user_id"] = str(user_id)
    # 413 and 422 bodies are not read again here: too large, or not what they claim to be.
    if request.endpoint in ACCOUNT_ENDPOINTS and status in (200, 202, 400, 401, 429):
        record["account"] = attempted_account()
    if status in REASON_STATUSES:
        record["reason"] = _error_message(response)
    if status >= 500:
        record["error"] = state.error_type or ""
    return record


def _error_message(response: Response) -> str:
    body = response.get_json(silent=True) if response.is_json else None
    message = body.get("error") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def init_audit_log(app: Flask) -> None:
    """Audit every response, whatever LOG_LEVEL says (the log format is observability.logs')."""
    log.setLevel(logging.INFO)
    app.after_request(audit_response)
