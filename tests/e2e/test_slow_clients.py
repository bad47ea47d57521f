"""Hundreds of connections trickling headers or never finishing bodies neither stop the service nor stay open."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import StartServer, add_post, list_posts, sign_up
from tests.support.api import ADD, LIST, bearer
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

TRICKLING_HEADERS = 300
UNFINISHED_BODIES = 20  # add-post with a Content-Length, half the body sent
UNFINISHED_CHUNKED = 20  # add-post with chunked framing, no last chunk
# gunicorn.conf.py's keepalive bounds the headers; the body bound is shortened for the test.
HEADER_BOUND = 5.0
BODY_BOUND = 3.0
SLACK = 5.0  # a busy shared machine
PROBES = 10
PROBE_BOUND = 2.0
TRICKLE_EVERY = 0.5


@dataclass
class Slow:
    """One hostile connection and what became of it."""

    sock: socket.socket
    kind: str
    opened: float
    closed: float | None = None
    answer: bytes = b""
    pending: bytes = field(default=b"")


def _open(port: int, kind: str, token: str) -> Slow:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    host = f"Host: 127.0.0.1:{port}\r\n"
    auth = f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    if kind == "headers":
        sock.sendall(f"GET /healthz HTTP/1.1\r\n{host}X-Slow: ".encode())
    elif kind == "body":
        sock.sendall(
            f"POST {ADD} HTTP/1.1\r\n{host}{auth}Content-Length: 1000\r\n\r\n".encode() + b'{"text": "' + b"a" * 400
        )
    else:
        sock.sendall(
            f"POST {ADD} HTTP/1.1\r\n{host}{auth}Transfer-Encoding: chunked\r\n\r\n".encode() + b'a\r\n{"text": "\r\n'
        )
    sock.setblocking(False)
    return Slow(sock, kind, time.monotonic())


def _probe(url: str, headers: dict[str, str], times: list[float], statuses: list[int]) -> None:
    for _ in range(PROBES):
        start = time.monotonic()
        try:
            statuses.append(requests.get(url, headers=headers, timeout=30).status_code)
        except requests.RequestException:
            statuses.append(0)
        times.append(time.monotonic() - start)


def test_slow_clients_are_cut_off_in_time_and_the_service_keeps_answering(
    start_server: StartServer, tmp_path: Path
) -> None:
    server: LiveServer = start_server(f"sqlite:///{tmp_path / 'slow.db'}", BODY_TIMEOUT_SECONDS=str(BODY_BOUND))
    token = sign_up(server.base, "ada@example.com")["access_token"]
    add_post(server.base, token, "hello")
    assert [post["text"] for post in list_posts(server.base, token)] == ["hello"]  # the cache is warm

    slow = [_open(server.port, "headers", token) for _ in range(TRICKLING_HEADERS)]
    slow += [_open(server.port, "body", token) for _ in range(UNFINISHED_BODIES)]
    slow += [_open(server.port, "chunked", token) for _ in range(UNFINISHED_CHUNKED)]
    selector = selectors.DefaultSelector()
    for conn in slow:
        selector.register(conn.sock, selectors.EVENT_READ, conn)

    # While every slow connection is open, /healthz and a cached listing answer in time.
    health_times: list[float] = []
    health_statuses: list[int] = []
    listing_times: list[float] = []
    listing_statuses: list[int] = []
    probes = [
        threading.Thread(
            target=_probe, args=(server.base + "/healthz", {"Connection": "close"}, health_times, health_statuses)
        ),
        threading.Thread(target=_probe, args=(server.base + LIST, bearer(token), listing_times, listing_statuses)),
    ]
    for probe in probes:
        probe.start()

    deadline = time.monotonic() + HEADER_BOUND + BODY_BOUND + 2 * SLACK
    next_trickle = 0.0
    open_when_probes_ended: int | None = None
    while any(conn.closed is None for conn in slow) and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_trickle:
            next_trickle = now + TRICKLE_EVERY
            for conn in slow:
                if conn.closed is None and conn.kind == "headers":
                    try:
                        conn.sock.send(b"a")  # one more byte of a header that never ends
                    except OSError:
                        conn.closed = now
        for key, _ in selector.select(timeout=0.1):
            conn = key.data
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                conn.answer += data
            else:
                conn.closed = time.monotonic()
                selector.unregister(conn.sock)
        if open_when_probes_ended is None and not any(probe.is_alive() for probe in probes):
            open_when_probes_ended = sum(conn.closed is None for conn in slow)
    for probe in probes:
        probe.join(60)
    for conn in slow:
        conn.sock.close()

    assert health_statuses == [200] * PROBES, health_statuses
    assert listing_statuses == [200] * PROBES, listing_statuses
    assert max(health_times) < PROBE_BOUND, health_times
    assert max(listing_times) < PROBE_BOUND, listing_times
    # The probes really ran while (nearly) all slow connections were held open.
    assert open_when_probes_ended is not None
    assert open_when_probes_ended >= 0.9 * len(slow), open_when_probes_ended

    still_open = [conn.kind for conn in slow if conn.closed is None]
    assert not still_open, f"{len(still_open)} slow connections still open: {set(still_open)}"
    header_times = [conn.closed - conn.opened for conn in slow if conn.kind == "headers" and conn.closed]
    body_times = [conn.closed - conn.opened for conn in slow if conn.kind != "headers" and conn.closed]
    assert max(header_times) < HEADER_BOUND + SLACK, max(header_times)
    assert min(header_times) > HEADER_BOUND - 1, min(header_times)  # cut by the bound, not refused at once
    assert max(body_times) < BODY_BOUND + SLACK, max(body_times)
    for conn in slow:
        if conn.kind != "headers":
            # A late body is told so (408, JSON) before the connection closes.
            head, _, body = conn.answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), (conn.kind, conn.answer[:300])
            assert b"Connection: close" in head
            assert b"application/json" in head
            assert body.startswith(b'{"error":"')
    # Nothing was stored from an unfinished body, and the service is fine afterwards.
    assert [post["text"] for post in list_posts(server.base, token)] == ["hello"]
    assert requests.get(server.base + "/healthz", headers={"Connection": "close"}, timeout=10).status_code == 200
