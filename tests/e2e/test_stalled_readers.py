"""Clients that request a large listing and never read it hold no database connection from others.

A streamed listing reads its posts in keyset batches, each on a connection returned before the
batch is sent; a client that stops reading stalls only its own greenlet, at a send.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine

from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, sign_up
from tests.support.api import ADD, LIST, bearer
from tests.support.posts import insert_posts

pytestmark = pytest.mark.e2e

STALLED = 40  # four times the pool (DB_POOL_SIZE, 10) per worker
POSTS, POST_BYTES = 16, 1024 * 1024  # a 16 MiB listing: far more than the sockets' buffers
OTHERS = 20


def _stalled_readers(port: int, token: str) -> Iterator[socket.socket]:
    """Connections that ask for the listing, then never read a byte."""
    for _ in range(STALLED):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        yield sock


def test_readers_that_never_read_leave_the_database_to_everyone_else(
    start_server: StartServer, database_url: str
) -> None:
    live = start_server(database_url)
    reader = sign_up(live.base, "reader@example.com")
    engine = create_engine(database_url)
    try:
        insert_posts(engine, reader["id"], ("r".ljust(POST_BYTES, "x") for _ in range(POSTS)))
    finally:
        engine.dispose()
    other = sign_up(live.base, "other@example.com")

    sockets = list(_stalled_readers(live.port, reader["access_token"]))
    try:
        time.sleep(2)  # every stalled stream has sent what the buffers take and is blocked on a send
        statuses = []
        for n in range(OTHERS):
            added = requests.post(
                live.base + ADD,
                json={"text": f"post {n}"},
                headers={**bearer(other["access_token"]), **CLOSE},
                timeout=TIMEOUT,
            )
            page = requests.get(
                live.base + LIST,
                params={"limit": 5},
                headers={**bearer(other["access_token"]), **CLOSE},
                timeout=TIMEOUT,
            )
            statuses += [added.status_code, page.status_code]
        assert statuses == [200] * (2 * OTHERS), statuses
        assert [post["text"] for post in page.json()] == [f"post {n}" for n in range(OTHERS - 1, OTHERS - 6, -1)]
    finally:
        for sock in sockets:
            sock.close()
