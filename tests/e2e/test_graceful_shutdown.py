"""SIGTERM to the gunicorn master lets a request already in flight finish and get stored."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time

import pytest
from sqlalchemy import create_engine, select

from models.tables import PostRow
from tests.e2e.helpers import TIMEOUT, StartServer, sign_up
from tests.support.api import ADD
from tests.support.gunicorn import STOP_TIMEOUT

pytestmark = pytest.mark.e2e

PIECES = 5
PAUSE_SECONDS = 0.5


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_sigterm_lets_an_in_flight_chunked_add_post_finish(database_url: str, start_server: StartServer) -> None:
    live = start_server(database_url)
    token = sign_up(live.base, "ada@example.com")["access_token"]
    text = "written while the server was stopping \N{GRINNING FACE}"
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    step = -(-len(body) // PIECES)
    pieces = [body[start : start + step] for start in range(0, len(body), step)]

    sock = socket.create_connection(("127.0.0.1", live.port), timeout=TIMEOUT)
    try:
        head = (
            f"POST {ADD} HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nConnection: close\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode() + _chunk(pieces[0]))
        time.sleep(1.0)  # a worker has accepted the connection and is reading the body
        live.process.send_signal(signal.SIGTERM)
        for piece in pieces[1:]:  # the rest trickles in while the server shuts down
            time.sleep(PAUSE_SECONDS)
            sock.sendall(_chunk(piece))
        sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read()
    finally:
        sock.close()

    assert response.status == 200, (response.status, answer, live.log_tail())
    post_id = json.loads(answer)["id"]
    try:
        exit_code = live.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gunicorn did not exit after SIGTERM:\n{live.log_tail()}")
    assert exit_code == 0, live.log_tail()

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(PostRow.id, PostRow.text)).all()
    finally:
        engine.dispose()
    assert [(str(row.id), row.text) for row in stored] == [(post_id, text)]
    log = live.log()
    assert "Handling signal: term" in log, live.log_tail()
    assert "WORKER TIMEOUT" not in log and "Traceback" not in log, live.log_tail()
