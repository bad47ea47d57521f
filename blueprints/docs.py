"""OpenAPI pieces shared by blueprints: security requirements and documented error responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_smorest import Blueprint

F = TypeVar("F", bound=Callable[..., Any])

# Either scheme works: Swagger UI's Authorize signs in (OAuth2 password flow) or takes a pasted token.
BEARER_SECURITY: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"HTTPBearer": []}]

SECURITY_SCHEMES = {
    "OAuth2PasswordBearer": {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": "/api/v1/auth/sign_in", "scopes": {}}},
    },
    "HTTPBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}

ERROR_RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def errors(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the error responses a view can give (the default error covers 500)."""

    def decorator(view: F) -> F:
        for status in statuses:
            view = blp.alt_response(status, response=ERROR_RESPONSE_NAMES[status])(view)
        return view

    return decorator
