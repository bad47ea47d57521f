"""Requests gunicorn itself refuses (before the app sees them) get the contract's JSON errors, not HTML."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.helpers import TIMEOUT, StartServer, closed_by_server, read_response
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

HOST = "Host: 127.0.0.1\r\n"
ADD = f"POST /api/v1/posts/add-post HTTP/1.1\r\n{HOST}"
MANY_FIELDS = "".join(f"X-{i}: 1\r\n" for i in range(120))
CASES = {
    # gunicorn's limit_request_field_size is 8,190 bytes.
    "header-too-large": (431, f"GET /healthz HTTP/1.1\r\n{HOST}X-Big: {'a' * 10_000}\r\n\r\n"),
    # ... and more than limit_request_fields (100) fields.
    "too-many-headers": (431, f"GET /healthz HTTP/1.1\r\n{HOST}{MANY_FIELDS}\r\n"),
    # limit_request_line is 4,094 bytes.
    "request-line-too-long": (414, f"GET /{'a' * 5000} HTTP/1.1\r\n{HOST}\r\n"),
    # Content-Length and Transfer-Encoding together: ambiguous framing (request smuggling).
    "length-and-chunked": (
        400,
        f"{ADD}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    "non-numeric-length": (400, f"{ADD}Content-Length: five\r\n\r\n"),
    "garbage-request-line": (400, "HELLO\r\n\r\n"),
    "unknown-transfer-coding": (
        501,
        f"{ADD}Transfer-Encoding: frobnicate, chunked\r\n\r\n0\r\n\r\n",
    ),
    # gunicorn knows gzip and lets it through; the app refuses it before reading the body.
    "gzip-then-chunked": (
        501,
        f"{ADD}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ),
    # A final coding other than chunked: the body's end cannot be known (RFC 9112 section 6.3).
    "final-coding-gzip": (400, f"{ADD}Transfer-Encoding: gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    "chunked-then-gzip": (400, f"{ADD}Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
}
EXACT = {
    "unknown-transfer-coding": {"error": "Transfer coding not implemented"},
    "gzip-then-chunked": {"error": "Transfer coding not implemented"},
}


@pytest.fixture
def gunicorn(start_server: StartServer, tmp_path: Path) -> LiveServer:
    return start_server(f"sqlite:///{tmp_path / 'errors.db'}")


def test_gunicorns_own_refusals_are_json(gunicorn: LiveServer) -> None:
    for name, (status, request) in CASES.items():
        with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=TIMEOUT) as sock:
            sock.sendall(request.encode("latin-1"))
            response = read_response(sock)
            assert response.status == status, (name, response.status, response.body[:200])
            assert response.headers["content-type"] == "application/json", (name, response.headers)
            assert response.headers["connection"] == "close", name
            body = response.json()
            assert list(body) == ["error"], (name, body)
            assert body == EXACT.get(name, body), name
            assert isinstance(body["error"], str)
            assert body["error"]
            assert b"<" not in response.body, name
            # Nothing the client sent is echoed back.
            assert not any(sent in response.body for sent in (b"aaaa", b"HELLO", b"five", b"frobnicate")), name
            assert closed_by_server(sock, within=5), name
    # The worker survived every one.
    log = gunicorn.log()
    assert "Traceback" not in log, gunicorn.log_tail()
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n".encode())
        assert read_response(sock).status == 200
