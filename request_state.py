"""What one request carries from the code that learns it to the code that reports it, typed.

One `RequestState` per app context, on Flask's `g`; `current()` gives it. Each field has one
owner that fills it (named below); the audit log, the metrics and the teardown read it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import g
from sqlalchemy.orm import Session

from services.emails import EmailAddress

_KEY = "posts_request_state"


@dataclass
class RequestState:
    """This request's id, user, error, rate-limit subject, attempted address, trusted device and database session."""

    request_id: str | None = None  # blueprints/middleware/request_id.py
    user_id: uuid.UUID | None = None  # set where the request proves who it is, for the audit log
    error_type: str | None = None  # blueprints/errors.py, for the audit line and the 503 metric
    unavailable_cause: str | None = None  # blueprints/errors.py: "database" (down) or "busy", for the metric
    attempted_account: str | None = None  # blueprints/auth/attempts.py
    attempted_address: EmailAddress | None = None  # blueprints/auth/attempts.py, once attempted_address_read
    attempted_address_read: bool = False
    trusted_device: str | None = None  # blueprints/auth/devices.py, once trusted_device_read
    trusted_device_read: bool = False
    db_session: Session | None = None  # resources.get_db, closed by resources.close_db
    # blueprints/auth/tokens.py: the view's write checks the token's session itself, in its statement.
    write_checks_session: bool = False
    unchecked_generation: int | None = None


def current() -> RequestState:
    """This request's state, created on first use."""
    state: RequestState | None = g.get(_KEY)
    if state is None:
        state = RequestState()
        setattr(g, _KEY, state)
    return state
