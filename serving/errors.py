"""gunicorn's own error responses (malformed requests it refuses before the app sees them) as JSON.

gunicorn writes these as HTML from `Worker.handle_error`; the contract wants every error as
`{"error": "..."}` with `Content-Type: application/json`. The status follows gunicorn's own
choice for each exception (workers/base.py); the message is fixed per status, so nothing the
client sent is echoed back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from ssl import SSLError

from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)

MESSAGES = {
    400: "Malformed request",
    403: "Forbidden",
    408: "Request body not received in time",
    414: "Request line too long",
    417: "Expectation failed",
    431: "Request header fields too large",
    500: "Internal server error",
    501: "Transfer coding not implemented",
}

# Checked in order: the first class the exception is an instance of decides.
_STATUS_BY_EXCEPTION: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    # A header the application tried to send is its own fault, not the client's.
    ((InvalidResponseHeader, InvalidResponseHeaderName), 500),
    (ConfigurationProblem, 500),
    (LimitRequestLine, 414),
    (LimitRequestHeaders, 431),
    (UnsupportedTransferCoding, 501),
    (ExpectationFailed, 417),
    ((ForbiddenProxyRequest, SSLError), 403),
    (ParseException, 400),
)


@dataclass(frozen=True)
class ErrorPage:
    """One error response: status line parts and the JSON body."""

    status: int
    reason: str
    body: bytes

    def http_bytes(self) -> bytes:
        """The whole HTTP/1.1 response; the connection closes after it."""
        head = (
            f"HTTP/1.1 {self.status} {self.reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "\r\n"
        )
        return head.encode("latin-1") + self.body


def status_for(exc: BaseException) -> int:
    """The status gunicorn answers for this exception (500 when it is not a client error)."""
    for classes, status in _STATUS_BY_EXCEPTION:
        if isinstance(exc, classes):
            return status
    return 500


def blamed_on_client(exc: BaseException) -> bool:
    """True for a refused request (logged as a warning), False for a fault of the server or app."""
    if isinstance(exc, (InvalidResponseHeader, InvalidResponseHeaderName)):
        return False
    return isinstance(exc, (ParseException, SSLError))


def error_page(status: int) -> ErrorPage:
    """The JSON error response for `status`."""
    reason = HTTPStatus(status).phrase
    body = json.dumps({"error": MESSAGES.get(status, reason)}, separators=(",", ":")).encode()
    return ErrorPage(status, reason, body)
