"""The 1 MiB request-body limit, enforced before anything parses the body, chunked bodies included."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

TOO_LARGE_KEY = "posts.body_too_large"
# Set in the WSGI environ when the server should close the connection after this response (a
# 413: the rest of the body may still be arriving). Apps must not send hop-by-hop headers
# (PEP 3333), so the server (serving.connection) announces `Connection: close` itself.
CLOSE_CONNECTION = "posts.close_connection"


class ChunkedBodyLimit:
    """WSGI middleware that buffers a body sent without Content-Length, up to the limit.

    Werkzeug stops reading such a body at the limit, which can silently truncate it.
    Reading one byte past the limit here tells "exactly at the limit" from "over it";
    a body that fits is handed on with a Content-Length like any other.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self._app = app
        self._limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Buffer a length-less body, or mark the request as too large."""
        if not environ.get("CONTENT_LENGTH") and _has_streamed_body(environ):
            body = environ["wsgi.input"].read(self._limit + 1)
            if len(body) > self._limit:
                environ[TOO_LARGE_KEY] = True
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.pop("wsgi.input_terminated", None)
        return self._app(environ, start_response)  # type: ignore[no-any-return]


def _has_streamed_body(environ: dict[str, Any]) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def reject_oversized_body() -> None:
    """before_request hook: 413 for any declared or streamed body over the limit, parsed or not."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    declared = request.content_length
    if request.environ.get(TOO_LARGE_KEY) or (declared is not None and declared > limit):
        raise RequestEntityTooLarge(f"Request body exceeds the limit of {limit} bytes (1 MiB)")
