"""Helpers for end-to-end tests: the server's shape, a new connection per request, raw framing when needed."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import create_engine, text

from tests.support.api import ADD, DELETE, LIST, PASSWORD, SIGN_UP, bearer
from tests.support.gunicorn import LiveServer

StartServer = Callable[..., LiveServer]
"""The `start_server` fixture: gunicorn on the given database URL, extra environment as keywords."""
WORKERS = 3
E2E_SECRET = "e2e-signing-key-that-is-at-least-32-bytes-long!"
LIMIT = 1024 * 1024
TIMEOUT = 30
# Every request opens its own connection, so successive requests can land on different workers.
CLOSE = {"Connection": "close"}


RESET_LINK = "https://app.example.com/reset?token={token}"


def mail_env(smtp_port: int, **extra: str) -> dict[str, str]:
    """The environment that aims a production server's reset mails at 127.0.0.1:`smtp_port` (plain SMTP)."""
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_SECURITY": "none",
        "SMTP_TIMEOUT_SECONDS": "10",
        "MAIL_FROM": "Posts API <no-reply@example.com>",
        "PASSWORD_RESET_URL": RESET_LINK,
        "MAIL_RETRY_SECONDS": "0.05",
        **extra,
    }


def sign_up(base: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Create an account and return the response body (user and tokens)."""
    response = requests.post(
        base + SIGN_UP, json={"email_address": email, "password": password}, headers=CLOSE, timeout=TIMEOUT
    )
    assert response.status_code == 200, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def add_post(base: str, token: str, text: str) -> str:
    """Add a post and return its id."""
    response = requests.post(base + ADD, json={"text": text}, headers=bearer(token), timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    post_id: str = response.json()["id"]
    return post_id


def list_posts(base: str, token: str) -> list[dict[str, Any]]:
    """The caller's listing (asserts 200)."""
    response = requests.get(base + LIST, headers=bearer(token), timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    posts: list[dict[str, Any]] = response.json()
    return posts


def delete_post(base: str, token: str, post_id: str) -> None:
    """Delete one of the caller's posts (asserts 200)."""
    response = requests.delete(base + DELETE, params={"post_id": post_id}, headers=bearer(token), timeout=TIMEOUT)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json() == {"status": "post deleted successfully"}


def json_body_of_size(size: int) -> bytes:
    """`{"text": "<4-byte emoji>..."}` of exactly `size` bytes (ASCII padding for the remainder)."""
    overhead = len(json.dumps({"text": ""}).encode())
    emoji, rest = divmod(size - overhead, 4)
    body = json.dumps({"text": "\N{GRINNING FACE}" * emoji + "x" * rest}, ensure_ascii=False).encode()
    assert len(body) == size
    return body


@dataclass
class RawResponse:
    """What the server answered on a raw connection."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    send_error: BaseException | None = field(default=None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def raw_post(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    chunked: bool,
    chunk_size: int = 65_521,
    timeout: float = TIMEOUT,
) -> RawResponse:
    """POST `body` on a fresh socket, framed with Transfer-Encoding: chunked or Content-Length.

    The body is written by a separate thread while this one reads the response, the way a
    browser or curl behaves: a server may answer (e.g. 413) and close before reading it all.
    An odd chunk size splits multi-byte characters across chunk boundaries.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    errors: list[BaseException] = []

    def frames() -> Iterable[bytes]:
        for start in range(0, len(body), chunk_size):
            piece = body[start : start + chunk_size]
            yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
        if chunked:
            yield b"0\r\n\r\n"

    def send() -> None:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for frame in frames():
                sock.sendall(frame)
        except OSError as exc:  # the server closed early; its answer is what matters
            errors.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        data = response.read()
        result = RawResponse(response.status, response.headers, data)
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the sender if it is still blocked
        sock.close()
    sender.join(timeout)
    result.send_error = errors[0] if errors else None
    return result


def log_records(text: str) -> list[dict[str, Any]]:
    """Every line of a production server's output, each parsed as the JSON object it must be."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"log line {number} is not JSON: {line!r}") from exc
        assert isinstance(record, dict), f"log line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records


def access_log(text: str) -> list[tuple[int, str, str, int]]:
    """(worker pid, method, path, status) of each access-log record, in order."""
    return [
        (record["pid"], record["method"], record["path"], record["status"])
        for record in log_records(text)
        if record["logger"] == "gunicorn.access"
    ]


def insert_unreadable_post(database_url: str, user_id: str) -> None:
    """A corrupted row for `user_id` whose `created_at` is not a date: reading the listing then fails (a 500).

    SQLite stores any text; MariaDB takes a zero date once strict mode is off for the session.
    """
    engine = create_engine(database_url)
    values = {"id": uuid.uuid4().hex, "user_id": uuid.UUID(user_id).hex}
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                created_at = "not a date"
            else:
                connection.execute(text("SET SESSION sql_mode = ''"))
                created_at = "0000-00-00 00:00:00"
            connection.execute(
                text("INSERT INTO posts (id, user_id, text, created_at) VALUES (:id, :user_id, 'x', :created_at)"),
                {**values, "created_at": created_at},
            )
    finally:
        engine.dispose()


def wait_for_every_worker(server: LiveServer, workers: int = WORKERS, within: float = 30.0) -> None:
    """Until each worker has served a request: the first one up would otherwise take a short burst alone."""
    deadline = time.monotonic() + within
    while len({pid for pid, *_ in access_log(server.log())}) < workers:
        assert time.monotonic() < deadline, server.log_tail()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda _: requests.get(server.base + "/", headers=CLOSE, timeout=TIMEOUT), range(workers)))


@dataclass
class WireResponse:
    """One response read off a raw socket: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def read_response(sock: socket.socket) -> WireResponse:
    """Read exactly one Content-Length-framed response from `sock` (nothing after it)."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            raise ConnectionError(f"connection closed before a complete response head: {head!r}")
        head += data
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        data = sock.recv(length - len(body))
        if not data:
            raise ConnectionError(f"connection closed after {len(body)} of {length} body bytes")
        body += data
    return WireResponse(int(status_line.split()[1]), headers, body)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `within` seconds; bytes it sends are dropped."""
    deadline = time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False
