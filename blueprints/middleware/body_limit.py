"""The 1 MiB request-body limit, enforced before anything parses the body, chunked bodies included."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from flask import current_app, request
from werkzeug import exceptions

TOO_LARGE_KEY = "posts.body_too_large"
# Set when the body comes in a transfer coding other than `chunked` alone: never read, 501. Under
# gunicorn only codings before a final `chunked` get here (`gzip, chunked`): a final coding other
# than `chunked` is malformed framing, which gunicorn answers 400 and closes (docs/api.md).
UNSUPPORTED_CODING_KEY = "posts.unsupported_transfer_coding"
# Set in the WSGI environ when the server should close the connection after this response (a
# 413: the rest of the body may still be arriving). Apps must not send hop-by-hop headers
# (PEP 3333), so the server (serving.connection) announces `Connection: close` itself.
CLOSE_AFTER_RESPONSE = "posts.close_after_response"


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
        """Buffer a length-less body, or mark the request as too large or in an unsupported coding."""
        codings = _transfer_codings(environ)
        if codings and codings != ["chunked"]:
            # gzip, deflate...: the body would need decoding nobody here does. Not read at all.
            environ[UNSUPPORTED_CODING_KEY] = True
            environ["wsgi.input"] = io.BytesIO(b"")
            environ["CONTENT_LENGTH"] = "0"
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        elif not environ.get("CONTENT_LENGTH") and codings:
            body = environ["wsgi.input"].read(self._limit + 1)
            if len(body) > self._limit:
                environ[TOO_LARGE_KEY] = True
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.pop("wsgi.input_terminated", None)
        return self._app(environ, start_response)  # type: ignore[no-any-return]


def _transfer_codings(environ: dict[str, Any]) -> list[str]:
    """The request's transfer codings, lower-cased, in order ([] without Transfer-Encoding)."""
    value = environ.get("HTTP_TRANSFER_ENCODING", "")
    return [coding.strip().lower() for coding in value.split(",") if coding.strip()]


def reject_oversized_body() -> None:
    """before_request hook: 501 for an unsupported transfer coding; 413 for any body over the limit, parsed or not."""
    if request.environ.get(UNSUPPORTED_CODING_KEY):
        raise exceptions.NotImplemented("Transfer coding not implemented")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    declared = request.content_length
    if request.environ.get(TOO_LARGE_KEY) or (declared is not None and declared > limit):
        raise exceptions.RequestEntityTooLarge(f"Request body exceeds the limit of {limit} bytes (1 MiB)")
