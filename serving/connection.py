"""The WSGI wrapper the worker puts around the app: an honest `Connection: close`, and a deadline on bodies.

Two things gunicorn does not do by itself:

- gunicorn drops the application's `Connection` header (hop-by-hop) and decides keep-alive
  alone, so a 413 the app marks `Connection: close` went out as `keep-alive`, and the
  connection was then closed under the client's next request. Here, a response the app marks
  `Connection: close` makes the worker close the connection (gunicorn's public
  `Request.force_close()`), so gunicorn itself announces `Connection: close`.
- gunicorn bounds the wait for request headers (the keep-alive timeout) but not for the body:
  a client that sends headers and then trickles (or never finishes) its body held its
  connection for as long as it liked. Here every read of `wsgi.input` counts against one
  deadline per request; past it the read raises `BodyTimeout` (a 408), the response is
  `{"error": ...}` and the connection is closed.

The worker tells this wrapper how to close the current connection through `CLOSE_CONNECTION`,
a context variable it sets around each request (each greenlet has its own context).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Protocol

from werkzeug.exceptions import RequestTimeout

from blueprints.middleware.body_limit import CLOSE_AFTER_RESPONSE
from serving.errors import MESSAGES, error_page

# Set by the worker around each request: closes the connection after this response.
CLOSE_CONNECTION: ContextVar[Callable[[], None]] = ContextVar("serving_close_connection")

# A scope that silently abandons its block after the given seconds (gevent.Timeout(s, False)).
DeadlineScope = Callable[[float], AbstractContextManager[object]]

_NOTHING: Any = object()


class BodyTimeout(RequestTimeout):
    """The request body did not arrive within the deadline (408; the connection is closed)."""

    description = MESSAGES[408]


class _Input(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class DeadlineInput:
    """`wsgi.input` whose reads all end by one deadline (monotonic seconds)."""

    def __init__(self, stream: _Input, deadline: float, scope: DeadlineScope) -> None:
        self._stream = stream
        self._deadline = deadline
        self._scope = scope
        self.expired = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all when negative), read before the deadline or BodyTimeout."""
        return self._bounded(self._stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        """One line (at most `size` bytes), read before the deadline or BodyTimeout."""
        return self._bounded(self._stream.readline, size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        """Lines until end of body (or about `hint` bytes), each read before the deadline."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _bounded(self, method: Callable[[int], bytes], size: int) -> bytes:
        remaining = self._deadline - time.monotonic()
        result = _NOTHING
        if remaining > 0:
            with self._scope(remaining):
                result = method(size)
        if result is _NOTHING:
            self.expired = True
            raise BodyTimeout
        return result  # type: ignore[no-any-return]


class HonestConnections:
    """WSGI middleware: the app's request to close (blueprints.middleware.body_limit.CLOSE_AFTER_RESPONSE in the
    environ, or a `Connection: close` header) closes the connection; bodies have a deadline."""

    def __init__(self, app: Any, body_timeout_seconds: float, scope: DeadlineScope) -> None:
        self._app = app
        self._body_timeout = body_timeout_seconds
        self._scope = scope

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Run the app with a deadline on its input, closing the connection when it asks or the body was late."""
        close = CLOSE_CONNECTION.get(_ignore)
        body = DeadlineInput(environ["wsgi.input"], time.monotonic() + self._body_timeout, self._scope)
        environ["wsgi.input"] = body

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if body.expired or environ.get(CLOSE_AFTER_RESPONSE) or _asks_to_close(headers):
                close()
            return start_response(status, headers, exc_info)

        try:
            return self._app(environ, start)  # type: ignore[no-any-return]
        except BodyTimeout:
            # Read by a middleware outside Flask (the chunked-body buffer), so no error handler ran.
            close()
            page = error_page(408)
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(page.body)))]
            start_response(f"{page.status} {page.reason}", headers, sys.exc_info())
            return [page.body]


def _asks_to_close(headers: list[tuple[str, str]]) -> bool:
    return any(
        name.lower() == "connection" and "close" in (token.strip().lower() for token in value.split(","))
        for name, value in headers
    )


def _ignore() -> None:
    """Outside a worker that sets CLOSE_CONNECTION there is nothing to close."""
