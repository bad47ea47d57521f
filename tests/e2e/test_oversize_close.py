"""A 413 closes its keep-alive connection honestly: `Connection: close`, the server closes, no request is lost."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path

import pytest

from tests.e2e.helpers import LIMIT, TIMEOUT, StartServer, closed_by_server, read_response, sign_up
from tests.support.api import ADD, LIST
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

ROUNDS = 3


@pytest.fixture
def server(start_server: StartServer, tmp_path: Path) -> LiveServer:
    return start_server(f"sqlite:///{tmp_path / 'oversize.db'}")


def _head(port: int, token: str, framing: str, length: int) -> bytes:
    """A keep-alive add-post request head (HTTP/1.1 without Connection: close)."""
    lines = [
        f"POST {ADD} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send_body(sock: socket.socket, body: bytes, framing: str) -> None:
    """Write the body the way a browser would: on its own, while the response is read."""
    try:
        if framing == "chunked":
            for start in range(0, len(body), 65_536):
                piece = body[start : start + 65_536]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(body)
    except OSError:
        pass  # the server answered and closed before reading it all: its answer is what counts


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_413_says_close_and_closes_on_raw_sockets(server: LiveServer, framing: str) -> None:
    token = sign_up(server.base, "ada@example.com")["access_token"]
    body = json.dumps({"text": "x" * LIMIT}).encode()  # a little over the limit
    for round_no in range(ROUNDS):
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            # First a normal request on the connection: keep-alive is really on.
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            first = read_response(sock)
            assert first.status == 200
            assert first.headers["connection"] == "keep-alive"

            sock.sendall(_head(server.port, token, framing, len(body)))
            sender = threading.Thread(target=_send_body, args=(sock, body, framing), daemon=True)
            sender.start()
            refused = read_response(sock)
            assert refused.status == 413, (round_no, refused.status, refused.body[:200])
            assert refused.headers["connection"] == "close", (round_no, refused.headers)
            assert list(refused.json()) == ["error"]
            assert closed_by_server(sock, within=10), f"round {round_no}: the connection stayed open after a 413"
            sender.join(TIMEOUT)
        # The client's next request, on a new connection as Connection: close told it, succeeds.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(f"GET {LIST} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            assert read_response(sock).status == 200


def test_an_http_client_loses_no_request_after_a_413(server: LiveServer) -> None:
    """http.client reuses a connection unless told to close: each request after a 413 must succeed."""
    token = sign_up(server.base, "ada@example.com")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    oversize = json.dumps({"text": "x" * LIMIT}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        for round_no in range(ROUNDS):
            connection.request("POST", ADD, body=oversize, headers=headers)
            refused = connection.getresponse()
            refused.read()
            assert refused.status == 413
            assert refused.will_close, f"round {round_no}: a 413 announced keep-alive"
            connection.request("POST", ADD, body=json.dumps({"text": f"after {round_no}"}), headers=headers)
            stored = connection.getresponse()
            assert stored.status == 200, (round_no, stored.status, stored.read()[:200])
            stored.read()
    finally:
        connection.close()
