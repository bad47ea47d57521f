"""Response headers every answer carries, and the docs pages' Content-Security-Policy."""

from __future__ import annotations

from flask import Response, request

DOCS_BLUEPRINT = "api-docs"
# Only the service's own assets. Swagger UI and ReDoc inject inline styles, ReDoc runs its
# search in a blob: worker and draws icons as data: images; nothing may leave the machine.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def add_standard_headers(response: Response) -> Response:
    """after_request hook: no MIME sniffing anywhere; a strict CSP on the documentation pages."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.blueprint == DOCS_BLUEPRINT:
        response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
