"""The log stream of real servers: gunicorn in production (JSON only, tracebacks and request ids
included, no secrets), a bad setting at start-up (one line, no value), the dev server (readable)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from observability.redaction import REDACTED
from tests.e2e.helpers import CLOSE, E2E_SECRET, TIMEOUT, WORKERS, StartServer, insert_unreadable_post, log_records
from tests.support.api import ADD, LIST, PASSWORD, SIGN_UP, bearer
from tests.support.gunicorn import REPO_ROOT, SCRUBBED
from tests.support.net import free_port
from tests.support.schema import create_schema

pytestmark = pytest.mark.e2e

EXIT_TIMEOUT = 60.0
# A signing key that is too short, but still a secret that must never be printed back.
SHORT_SECRET = "tooshort-but-secret-7f3a9c"


def test_a_production_run_logs_only_json_with_request_ids_and_a_traceback(
    start_server: StartServer, database_url: str
) -> None:
    server = start_server(database_url)
    base = server.base
    email = "log.reader@example.com"

    def call(rid: str, method: str, path: str, status: int, **kwargs: Any) -> requests.Response:
        headers = {**CLOSE, "X-Request-ID": rid, **kwargs.pop("headers", {})}
        response = requests.request(method, base + path, headers=headers, timeout=TIMEOUT, **kwargs)
        assert response.status_code == status, (path, response.status_code, response.text, server.log_tail())
        return response

    tokens = call("log-sign-up", "POST", SIGN_UP, 200, json={"email_address": email, "password": PASSWORD}).json()
    access_token = tokens["access_token"]
    call("log-query", "GET", "/?token=t0ps3cret&password=hunter2hunter2&limit=3", 200)
    # Tokens are never read from the query string (401), and never written from it to the log.
    call("log-jwt-query", "GET", f"{LIST}?access_token={access_token}", 401)
    call("log-list", "GET", LIST, 200, headers=bearer(access_token))
    # A client that puts its token in the User-Agent (and a reset token, as a parameter).
    agent = f"leaky-client/1.0 {access_token} token=r3s3t-t0k3n"
    call("log-agent", "GET", LIST, 200, headers={**bearer(access_token), "User-Agent": agent})
    call("log-metrics", "GET", "/metrics", 404)  # not on the API's port
    # An unhandled error: a corrupted row breaks reading the listing, a 500 on every backend.
    insert_unreadable_post(database_url, tokens["id"])
    call("log-add", "POST", ADD, 200, json={"text": "y"}, headers=bearer(access_token))  # the listing is re-read
    assert call("log-boom", "GET", LIST, 500, headers=bearer(access_token)).json() == {"error": "Internal server error"}
    server.stop()  # its shutdown lines too

    log = server.log()
    records = log_records(log)  # every line is one JSON object, or this fails naming the line
    assert all({"ts", "level", "logger", "message", "pid"} <= set(record) for record in records)
    by_logger: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_logger.setdefault(str(record["logger"]), []).append(record)

    # Access lines: one per request, with the id the app answered with and the worker's pid.
    access = {record.get("request_id"): record for record in by_logger["gunicorn.access"]}
    for rid, path, status in [
        ("log-sign-up", SIGN_UP, 200),
        ("log-query", f"/?token={REDACTED}&password={REDACTED}&limit=3", 200),
        ("log-jwt-query", f"{LIST}?access_token={REDACTED}", 401),
        ("log-list", LIST, 200),
        ("log-boom", LIST, 500),
    ]:
        line = access[rid]
        assert (line["path"], line["status"]) == (path, status), line
        assert isinstance(line["duration_ms"], float) and isinstance(line["pid"], int)
        assert line["method"] in ("GET", "POST") and line["client"] == "127.0.0.1"
    # Every field is redacted, the user agent included.
    assert access["log-agent"]["user_agent"] == f"leaky-client/1.0 {REDACTED} token={REDACTED}"
    assert str(access["log-list"]["user_agent"]).startswith("python-requests/")
    # Audit lines, through the same handler.
    audit = {record["request_id"]: record for record in by_logger["posts.audit"]}
    assert (audit["log-sign-up"]["event"], audit["log-boom"]["event"]) == ("sign_up", "server_error")
    assert audit["log-jwt-query"]["event"] == "authorization_failed"
    # The application's error line, with its traceback and the request id.
    (error,) = by_logger["blueprints.errors"]
    assert (error["level"], error["request_id"]) == ("ERROR", "log-boom")
    assert str(error["traceback"]).startswith("Traceback (most recent call last)")
    assert "Error" in str(error["traceback"])
    # gunicorn's own lines: start, workers, shutdown.
    messages = [str(record["message"]) for record in by_logger["gunicorn.error"]]
    assert any(message.startswith("Booting worker") for message in messages)
    assert any(message.startswith("Shutting down") for message in messages)
    # Metrics are off unless METRICS_PORT is set.
    assert not any("metrics" in message for message in messages)
    # No secret reached the log.
    secrets = ("t0ps3cret", "hunter2hunter2", "r3s3t-t0k3n", PASSWORD, email, access_token)
    for secret in (*secrets, *access_token.split(".")[1:]):
        assert secret not in log, secret


PROBES = ("/healthz", "/readyz")


def _probe(base: str, status: int, rounds: int = WORKERS) -> None:
    for path in PROBES * rounds:  # new connections: the probes land on every worker
        response = requests.get(base + path, headers=CLOSE, timeout=TIMEOUT)
        assert response.status_code == (200 if path == "/healthz" else status), response.text


def _probe_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["logger"] == "gunicorn.access" and record["path"] in PROBES]


def test_a_worker_boots_in_one_line_and_healthy_probes_log_nothing_at_info(
    start_server: StartServer, database_url: str
) -> None:
    """Issue 27: every /readyz wrote two alembic INFO lines, every worker boot seven (compose probes every 10 s)."""
    server = start_server(database_url)
    _probe(server.base, 200)
    server.stop()
    records = log_records(server.log())
    booted = {record["pid"] for record in records if str(record["message"]).startswith("Booting worker")}
    assert len(booted) == WORKERS, server.log_tail()
    for pid in booted:
        own = [
            record["message"] for record in records if record["pid"] == pid and record["logger"] != "gunicorn.access"
        ]
        assert own == [f"Booting worker with pid: {pid}", f"Worker exiting (pid: {pid})"], own
    assert _probe_lines(records) == [], server.log_tail()
    assert not [record for record in records if str(record["logger"]).startswith("alembic")], server.log_tail()


def test_probes_are_logged_at_debug_and_a_failing_probe_at_info(start_server: StartServer, tmp_path: Path) -> None:
    debug = start_server(f"sqlite:///{tmp_path / 'debug.db'}", LOG_LEVEL="DEBUG", WEB_CONCURRENCY="1")
    _probe(debug.base, 200, rounds=2)
    debug.stop()
    lines = _probe_lines(log_records(debug.log()))
    assert len(lines) == 4 and {line["level"] for line in lines} == {"DEBUG"}, debug.log_tail()
    # An unmigrated database: /readyz answers 503, which is worth a line at the default level.
    unready = start_server(f"sqlite:///{tmp_path / 'empty.db'}", create_tables=False, WEB_CONCURRENCY="1")
    _probe(unready.base, 503, rounds=2)
    unready.stop()
    lines = _probe_lines(log_records(unready.log()))
    assert [(line["path"], line["status"], line["level"]) for line in lines] == [("/readyz", 503, "INFO")] * 2


def test_a_bad_setting_is_reported_once_in_one_line_without_its_value(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update(
        APP_ENV="production",
        JWT_SECRET_KEY=SHORT_SECRET,
        WEB_CONCURRENCY="3",
        DATABASE_URL=f"sqlite:///{tmp_path / 'posts.db'}",
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        CACHE_DIR=str(tmp_path / "cache"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "wsgi:app"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert SHORT_SECRET not in output and "input_value" not in output
    records = log_records(output)
    errors = [record for record in records if record["level"] == "ERROR"]
    assert [record["message"] for record in errors] == ["Error: JWT_SECRET_KEY: must be at least 32 bytes"]
    # Refused in the master: no worker was started, so nothing is repeated per worker.
    assert not any(str(record["message"]).startswith("Booting worker") for record in records)


def test_the_dev_server_writes_readable_lines_with_one_timestamp_and_no_colour(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'posts.db'}"
    create_schema(database_url)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update(APP_ENV="development", JWT_SECRET_KEY=E2E_SECRET, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    env.pop("FLASK_DEBUG", None)
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port), "--no-reload"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + EXIT_TIMEOUT
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        assert requests.get(base + "/?token=dev-s3cret", timeout=TIMEOUT).status_code == 200
        assert requests.get(base + "/nowhere", timeout=TIMEOUT).status_code == 404
        # A 413 announces the close once: the server says it, the app sends no hop-by-hop header.
        head = _raw_oversized_post_head(port)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert head.lower().count(b"\r\nconnection:") == 1, head
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log_path.read_text()
    assert "\x1b" not in output and "dev-s3cret" not in output, output
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    lines = output.splitlines()
    for request_line in (r'"GET /\?token=\[REDACTED\] HTTP/1\.1" 200', r'"GET /nowhere HTTP/1\.1" 404'):
        matching = [line for line in lines if re.search(request_line, line)]
        assert len(matching) == 1, output
        # One timestamp, ours: werkzeug's own "- - [date]" is gone.
        assert re.fullmatch(rf"{stamp} INFO    werkzeug 127\.0\.0\.1 {request_line} -", matching[0]), matching[0]


def _raw_oversized_post_head(port: int) -> bytes:
    """The head of the answer to a body declared over 1 MiB (sent in part: the server refuses it unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(
            f"POST {ADD} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
            + b"x" * 1024
        )
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n\r\n", 1)[0] + b"\r\n"
