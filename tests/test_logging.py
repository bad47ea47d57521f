"""The log formats, redaction and start-up errors: what a real handler writes, line by line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import ConfigError, Settings, load_settings
from observability.gunicorn_logger import access_fields
from observability.logs import ConsoleFormatter, JsonFormatter, StderrHandler, choose_format, configure_logging
from observability.redaction import REDACTED, redact
from tests.support.api import TEST_SECRET

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwidHlwZSI6ImFjY2VzcyJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/api/v1/posts?token=abc123", f"/api/v1/posts?token={REDACTED}"),
        ("/x?password=hunter2&limit=10", f"/x?password={REDACTED}&limit=10"),
        (
            "/x?limit=10&access_token=a.b.c&refresh_token=d",
            f"/x?limit=10&access_token={REDACTED}&refresh_token={REDACTED}",
        ),
        (
            "/x?api_key=k&client_secret=s&X-Amz-Signature=f00",
            f"/x?api_key={REDACTED}&client_secret={REDACTED}&X-Amz-Signature={REDACTED}",
        ),
        ("/x?PassWord=a&pass%77ord=b", f"/x?PassWord={REDACTED}&pass%77ord={REDACTED}"),
        ('"GET /x?token=abc HTTP/1.1" 200', f'"GET /x?token={REDACTED} HTTP/1.1" 200'),
        (f"/x?{JWT}", f"/x?{REDACTED}"),
        # A quote does not end a secret: it may be part of it.
        ("/x?password=x'SECRET", f"/x?password={REDACTED}"),
        ('/x?token=a"SECRET&limit=1', f"/x?token={REDACTED}&limit=1"),
        ("/reset?token='SECRET' sent", f"/reset?token={REDACTED} sent"),
        (f"Bearer {JWT} refused", f"Bearer {REDACTED} refused"),
        ("mysql+pymysql://posts:s3cret@db:3306/posts", f"mysql+pymysql://posts:{REDACTED}@db:3306/posts"),
        ("/api/v1/posts/delete_my_post?post_id=5bb9ba60-2e5f-42b1-baf4-a9f74329baa0", None),
        ("/api/v1/posts/get_my_posts?limit=5&before=5bb9", None),
        ("a = b, x=1 and no query", None),
        # Free text and header values too: at the start, after whitespace or a comma.
        ("token=abc123", f"token={REDACTED}"),
        ("my-client/1.0 token=abc123 (X11)", f"my-client/1.0 token={REDACTED} (X11)"),
        ("app (compatible,api_key=k) v2", f"app (compatible,api_key={REDACTED} v2"),
        (f"curl/8.5 {JWT}", f"curl/8.5 {REDACTED}"),
        (f"cut {JWT[:60]}", f"cut {REDACTED}"),
        ("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0", None),
        ("", None),
    ],
)
def test_redact(given: str, expected: str | None) -> None:
    assert redact(given) == (given if expected is None else expected)


@pytest.mark.parametrize(
    ("log_format", "app_env", "expected"),
    [
        (None, "production", "json"),
        (None, "development", "console"),
        (None, "testing", "console"),
        (None, None, "console"),
        ("json", "development", "json"),
        ("console", "production", "console"),
        ("yaml", "production", "json"),  # invalid: the settings refuse it; the master still logs
    ],
)
def test_choose_format(log_format: str | None, app_env: str | None, expected: str) -> None:
    assert choose_format(log_format, app_env) == expected


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that configures them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _emit(capsys: pytest.CaptureFixture[str], log_format: str) -> list[str]:
    """Log a few records the way the service does; the lines the handler wrote."""
    capsys.readouterr()
    configure_logging(log_format, "INFO")  # type: ignore[arg-type]
    log = logging.getLogger("tests.logging")
    log.info("plain %s", "message")
    log.info("sign_in", extra={"event": "sign_in", "status": 200, "path": "/api/v1/auth/sign_in"})
    log.warning("fetched https://example.com/cb?code=abc123&state=ok")
    try:
        raise RuntimeError(f"boom with {JWT}")
    except RuntimeError:
        log.exception("unhandled error")
    return capsys.readouterr().err.splitlines()


@pytest.mark.usefixtures("restore_root_logging")
def test_json_format_is_one_object_per_line_with_traceback_and_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _emit(capsys, "json")
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    plain, audit, warning, error = records
    assert list(plain) == ["ts", "level", "logger", "message", "pid"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", plain["ts"])
    assert (plain["level"], plain["logger"], plain["message"]) == ("INFO", "tests.logging", "plain message")
    assert isinstance(plain["pid"], int)
    assert (audit["event"], audit["status"], audit["path"]) == ("sign_in", 200, "/api/v1/auth/sign_in")
    assert warning["message"] == f"fetched https://example.com/cb?code={REDACTED}&state=ok"
    assert error["level"] == "ERROR"
    assert error["traceback"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: boom with [REDACTED]" in error["traceback"]
    assert JWT not in "\n".join(lines) and "abc123" not in "\n".join(lines)


@pytest.mark.usefixtures("restore_root_logging")
def test_console_format_is_readable_without_colour(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _emit(capsys, "console")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf"{stamp} INFO    tests\.logging plain message", lines[0])
    assert re.fullmatch(
        rf"{stamp} INFO    tests\.logging sign_in event=sign_in status=200 path=/api/v1/auth/sign_in", lines[1]
    )
    assert lines[2].endswith(f"code={REDACTED}&state=ok")
    assert re.fullmatch(rf"{stamp} ERROR   tests\.logging unhandled error", lines[3])
    assert lines[4] == "Traceback (most recent call last):"
    assert lines[-1] == f"RuntimeError: boom with {REDACTED}"
    assert not any("\x1b" in line for line in lines)


@pytest.mark.usefixtures("restore_root_logging")
def test_configuring_twice_keeps_one_handler() -> None:
    configure_logging("json", "INFO")
    configure_logging("console", "WARNING")
    root = logging.getLogger()
    assert len([handler for handler in root.handlers if isinstance(handler, StderrHandler)]) == 1
    assert root.level == logging.WARNING


@pytest.mark.usefixtures("restore_root_logging")
def test_werkzeug_dev_server_lines_keep_one_timestamp_and_no_colour(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "INFO")
    capsys.readouterr()
    # What werkzeug's request handler logs for a 404 (it colours the request line itself).
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - [27/Nov/2026 10:00:00] "%s" %s %s', "\x1b[33mGET /x?token=abc HTTP/1.1\x1b[0m", "404", "-"
    )
    (line,) = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf'{stamp} INFO    werkzeug 127\.0\.0\.1 "GET /x\?token=\[REDACTED\] HTTP/1\.1" 404 -', line), (
        line
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual test settings, logging JSON as in production."""
    return load_settings({}, **{**settings.model_dump(), **{"log_format": "json"}})


@pytest.mark.usefixtures("restore_root_logging")
def test_a_record_logged_during_a_request_carries_its_id(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/log-something")
    def log_something() -> str:
        logging.getLogger("tests.view").warning("inside the view")
        return "ok"

    capsys.readouterr()
    assert client.get("/log-something", headers={"X-Request-ID": "rid-42"}).status_code == 200
    logging.getLogger("tests.view").warning("outside any request")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (inside["message"], inside["request_id"]) == ("inside the view", "rid-42")
    assert outside["message"] == "outside any request" and "request_id" not in outside


class _GunicornResponse:
    """The attributes gunicorn's Response gives a logger class (gunicorn.http.wsgi.Response)."""

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = sent


def test_access_fields_carry_the_request_id_and_are_written_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/posts/get_my_posts?limit=2&access_token={JWT}&password=hunter2",
        "PATH_INFO": "/api/v1/posts/get_my_posts",
        "REMOTE_ADDR": "203.0.113.9",
        "REMOTE_PORT": "51234",
        "HTTP_USER_AGENT": f"evil-client/1.0 {JWT} token=r3s3t",
    }
    response = _GunicornResponse("200 OK", [("Content-Type", "application/json"), ("X-Request-ID", "abc")], 42)
    fields = access_fields(response, environ, timedelta(microseconds=1500))
    assert fields == {
        "method": "GET",
        "path": environ["RAW_URI"],
        "status": 200,
        "duration_ms": 1.5,
        "bytes": 42,
        "client": "203.0.113.9",
        "client_port": "51234",
        # Redacted before it is cut to its bound, so a cut token is redacted whole.
        "user_agent": f"evil-client/1.0 {REDACTED} token={REDACTED}",
        "request_id": "abc",
    }
    # A token cut by the bound is still redacted whole.
    long_agent = {**environ, "HTTP_USER_AGENT": "x" * 150 + " " + JWT}
    assert access_fields(response, long_agent, timedelta(0))["user_agent"] == "x" * 150 + " " + REDACTED
    # Written, every field is redacted, in both formats.
    path = f"/api/v1/posts/get_my_posts?limit=2&access_token={REDACTED}&password={REDACTED}"
    agent = f"evil-client/1.0 {REDACTED} token={REDACTED}"
    args = ("GET", fields["path"], 200)
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%s %s %s", args, None)
    record.__dict__.update(fields)
    written = JsonFormatter().format(record)
    assert {key: json.loads(written)[key] for key in ("message", "path", "user_agent", "status")} == {
        "message": f"GET {path} 200",
        "path": path,
        "user_agent": agent,
        "status": 200,
    }
    console = ConsoleFormatter().format(record)
    assert f"path={path}" in console and f"user_agent={agent}" in console
    for line in (written, console):
        assert JWT not in line and "hunter2" not in line and "r3s3t" not in line


@pytest.mark.parametrize("formatter", [JsonFormatter(), ConsoleFormatter()], ids=["json", "console"])
def test_every_field_of_every_record_is_redacted(formatter: logging.Formatter) -> None:
    extra: dict[str, Any] = {
        "text": f"Bearer {JWT}",
        "listed": ["fine", "password=hunter2"],
        "mapping": {"url": "mysql://posts:s3cret@db/posts"},
        "other": RuntimeError("token=abc123"),
        "number": 3,
        "missing": None,
        "request_id": "rid-1",
    }
    record = logging.LogRecord("posts.test", logging.INFO, __file__, 1, "a record with fields", (), None)
    record.__dict__.update(extra)
    line = formatter.format(record)
    for secret in (JWT, "hunter2", "s3cret", "abc123"):
        assert secret not in line, (secret, line)
    assert line.count(REDACTED) == 4 and "fine" in line and "rid-1" in line


def test_a_bad_setting_is_named_without_its_value() -> None:
    secret = "short-but-secret-value"
    with pytest.raises(ConfigError) as raised:
        load_settings({"JWT_SECRET_KEY": secret, "METRICS_PORT": "70000", "LOG_FORMAT": "xml"})
    message = str(raised.value)
    assert "JWT_SECRET_KEY: must be at least 32 bytes" in message
    assert "METRICS_PORT:" in message and "LOG_FORMAT:" in message
    assert secret not in message and "input_value" not in message and "\n" not in message
    # Nor anywhere in the traceback a log would print: the ValidationError is not chained.
    assert raised.value.__suppress_context__ and raised.value.__cause__ is None


def test_valid_observability_settings() -> None:
    settings = load_settings(
        {"JWT_SECRET_KEY": TEST_SECRET, "LOG_FORMAT": "json", "METRICS_PORT": "9100", "METRICS_ADDR": "127.0.0.1"}
    )
    assert (settings.log_format, settings.metrics_port, settings.metrics_addr) == ("json", 9100, "127.0.0.1")
    assert load_settings({"JWT_SECRET_KEY": TEST_SECRET}).metrics_port is None
