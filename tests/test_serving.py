"""The serving package's parts without gunicorn: error pages, the honest-close wrapper, the body deadline, offload."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeader,
    InvalidRequestLine,
    InvalidResponseHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    UnsupportedTransferCoding,
)
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.test import EnvironBuilder

from services.passwords import Passwords, run_here
from serving.connection import CLOSE_CONNECTION, BodyTimeout, DeadlineInput, HonestConnections
from serving.errors import blamed_on_client, error_page, status_for
from serving.offload import ThreadOffload, gevent_is_active, offload


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (LimitRequestHeaders("too many"), 431),
        (LimitRequestLine(5000, 4094), 414),
        (UnsupportedTransferCoding("frobnicate"), 501),
        (InvalidHeader("CONTENT-LENGTH"), 400),
        (InvalidRequestLine("HELLO"), 400),
        (InvalidChunkSize(b"zz"), 400),
        (InvalidResponseHeader("X-Bad"), 500),
        (RuntimeError("boom"), 500),
    ],
)
def test_each_refusal_gets_gunicorns_status(exc: BaseException, status: int) -> None:
    assert status_for(exc) == status
    assert blamed_on_client(exc) == (status != 500)


def test_an_error_page_is_json_and_closes_the_connection() -> None:
    raw = error_page(431).http_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert "Connection: close" in lines
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"error": "Request header fields too large"}


def _call(app: Any, environ: dict[str, Any], scope: Any = None) -> tuple[str, list[tuple[str, str]], bytes, list[str]]:
    """Run a WSGI app under HonestConnections the way the worker does; (status, headers, body, closes)."""
    closes: list[str] = []
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda _data: None

    token = CLOSE_CONNECTION.set(lambda: closes.append("closed"))
    try:
        wrapped = HonestConnections(app, 5.0, scope or _never_expires)
        body = b"".join(wrapped(environ, start_response))
    finally:
        CLOSE_CONNECTION.reset(token)
    return started[0], started[1], body, closes


@contextlib.contextmanager
def _never_expires(_seconds: float) -> Iterator[None]:
    yield


@contextlib.contextmanager
def _expires_now(_seconds: float) -> Iterator[None]:
    """Like gevent.Timeout(s, False) firing at once: the block is abandoned silently."""
    with contextlib.suppress(TimeoutError):
        yield


class _Stalled:
    """A request body whose next read never completes: it raises where the deadline would interrupt it."""

    def read(self, _size: int = -1) -> bytes:
        raise TimeoutError

    def readline(self, _size: int = -1) -> bytes:
        raise TimeoutError


def _environ(body: Any = None) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": body or io.BytesIO(b"")}


def test_a_response_marked_connection_close_closes_the_connection() -> None:
    def app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("413 Content Too Large", [("Content-Type", "application/json"), ("Connection", "close")])
        return [b"{}"]

    status, headers, _body, closes = _call(app, _environ())
    assert status.startswith("413")
    assert closes == ["closed"]
    assert ("Connection", "close") in headers  # gunicorn drops it, and says close itself


@pytest.mark.parametrize("connection", [None, "keep-alive", "Upgrade"])
def test_other_responses_leave_the_connection_to_gunicorn(connection: str | None) -> None:
    def app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", "application/json")]
        if connection:
            headers.append(("Connection", connection))
        start_response("200 OK", headers)
        return [b"{}"]

    assert _call(app, _environ())[3] == []


def test_a_late_body_read_outside_flask_is_a_json_408_and_closes() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(10)  # like the chunked-body buffer, which reads before Flask
        start_response("200 OK", [])
        return [b"never"]

    status, headers, body, closes = _call(app, _environ(_Stalled()), _expires_now)
    assert status == "408 Request Timeout"
    assert ("Content-Type", "application/json") in headers
    assert json.loads(body) == {"error": "Request body not received in time"}
    assert closes == ["closed"]


def test_a_late_body_read_by_the_app_is_its_json_408_and_closes(app: Flask, sign_up: Any, client: Any) -> None:
    token = sign_up()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    environ = EnvironBuilder(
        method="POST", path="/api/v1/posts/add-post", headers=list(auth.items()), json={"text": "never arrives"}
    ).get_environ()
    environ["wsgi.input"] = _Stalled()
    status, headers, body, closes = _call(app, environ, _expires_now)
    assert status.startswith("408 ")
    assert dict(headers)["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "Request body not received in time"}
    assert closes == ["closed"]
    assert client.get("/api/v1/posts/get_my_posts", headers=auth).get_json() == []


def test_a_deadline_already_past_refuses_without_reading() -> None:
    stream = DeadlineInput(io.BytesIO(b"data"), 0.0, _never_expires)
    with pytest.raises(BodyTimeout):
        stream.readline()
    assert stream.expired


def test_reads_before_the_deadline_pass_through() -> None:
    stream = DeadlineInput(io.BytesIO(b"line one\nline two\n"), 1e12, _never_expires)
    assert stream.readline() == b"line one\n"
    assert list(stream) == [b"line two\n"]
    assert stream.read() == b""
    assert not stream.expired


def test_without_gevent_hashing_runs_inline() -> None:
    assert not gevent_is_active()
    assert offload() is run_here


def test_passwords_use_the_injected_runner() -> None:
    calls: list[str] = []

    def runner(call: Any) -> Any:
        calls.append(threading.current_thread().name)
        return call()

    passwords = Passwords(run=runner)
    hashed = passwords.hash("correct horse battery")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "wrong horse battery")
    assert len(calls) == 3


def test_offloaded_calls_run_on_native_threads_and_a_full_queue_is_refused() -> None:
    import gevent

    offload_pool = ThreadOffload(threads=2, max_in_flight=3)
    release = threading.Event()
    main = threading.get_ident()
    own_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def hash_like() -> int:
        release.wait(60)
        return threading.get_ident()

    try:
        waiting = [gevent.spawn(offload_pool, hash_like) for _ in range(3)]
        gevent.sleep(0.01)  # let them reach the pool
        with pytest.raises(ServiceUnavailable) as refused:
            offload_pool(hash_like)
        assert refused.value.retry_after == 1
        release.set()
        gevent.joinall(waiting, timeout=60, raise_error=True)
        idents = {greenlet.value for greenlet in waiting}
        assert main not in idents
        assert len(idents) <= 2
        # The pool threads run below the event loop's CPU priority; this thread is untouched.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own_priority
        assert offload_pool(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == own_priority + 10
        assert offload_pool(lambda: 42) == 42  # room again once they are done
        with pytest.raises(ZeroDivisionError):
            offload_pool(lambda: 1 // 0)
    finally:
        release.set()
        offload_pool.close()


def test_each_greenlets_request_closes_only_its_own_connection() -> None:
    """The worker serves many requests at once on one thread: the close must reach the right one."""
    import gevent

    closed: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        gevent.sleep(0.01)  # the other request runs meanwhile
        headers = [("Connection", "close")] if environ["PATH_INFO"] == "/close" else []
        start_response("200 OK", headers)
        return [b""]

    wrapped = HonestConnections(app, 5.0, _never_expires)

    def serve(path: str) -> None:
        CLOSE_CONNECTION.set(lambda: closed.append(path))
        gevent.sleep(0.01)  # the worker may switch between setting it and running the app
        environ = {**_environ(), "PATH_INFO": path}
        list(wrapped(environ, lambda *_args: None))

    gevent.joinall([gevent.spawn(serve, path) for path in ("/keep", "/close", "/keep-too")], raise_error=True)
    assert closed == ["/close"]


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate", "chunked, chunked", "GZIP , Chunked"])
def test_a_transfer_coding_other_than_chunked_alone_is_501_before_the_body_is_read(client: Any, coding: str) -> None:
    body = io.BytesIO(b'{"text": "never read"}')
    response = client.post(
        "/api/v1/posts/add-post",
        input_stream=body,
        headers={"Transfer-Encoding": coding, "Content-Type": "application/json"},
    )
    assert response.status_code == 501
    assert response.get_json() == {"error": "Transfer coding not implemented"}
    assert body.tell() == 0  # not a byte read: 501 comes before authentication too (the server closes: e2e)
