"""The request id: taken from a sane incoming `X-Request-ID`, else generated; echoed on every response."""

from __future__ import annotations

import re
import uuid

from flask import Response, request

import request_state

HEADER = "X-Request-ID"
# Wide enough for UUIDs, hex trace ids and base64; nothing that could split a log line or a header.
_SANE = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


def request_id() -> str:
    """This request's id, fixed on first use: the client's if it is sane, else a new UUID."""
    state = request_state.current()
    if state.request_id is None:
        offered = request.headers.get(HEADER, "")
        state.request_id = offered if _SANE.fullmatch(offered) else uuid.uuid4().hex
    return state.request_id


def echo_request_id(response: Response) -> Response:
    """after_request hook: every response, errors included, carries the request id."""
    response.headers[HEADER] = request_id()
    return response
