"""One logging configuration for gunicorn, the app, the audit trail and the dev server.

Every record, whoever emits it (gunicorn's master and workers, the access log, this app, the
audit trail, werkzeug's dev server, SQLAlchemy, Python warnings), goes through one handler on
the root logger, writing to standard error in one of two formats:

- `json` (the default when APP_ENV=production): one JSON object per line, via python-json-logger,
  with `ts`, `level`, `logger`, `message`, `pid`, the request id when there is a request, the
  `trace_id` and `span_id` of the current span when traces are on and it is sampled, any
  structured fields the caller passed (`extra=`), and `traceback` for errors;
- `console` (the default otherwise): one readable line, `time level logger [request id] message
  key=value...`, with the traceback below it. No colour codes, so a redirected file stays clean.

Secrets are redacted from every field of every record: the message, the traceback and each
structured field, the access log's user agent included (observability.redaction).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from flask import has_request_context
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from config import Settings
from observability.redaction import redact, redact_field

LogFormat = Literal["json", "console"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console")

# Fields every JSON line has, in this order, under these names.
_JSON_FIELDS = ["levelname", "name", "message", "process"]
_JSON_NAMES = {"levelname": "level", "name": "logger", "process": "pid", "exc_info": "traceback"}
_STANDARD = frozenset(RESERVED_ATTRS) | {"request_id", "taskName"}
# werkzeug's dev-server lines: `127.0.0.1 - - [27/Nov/2026 10:00:00] "GET / HTTP/1.1" 200 -`.
_DEV_SERVER_LINE = re.compile(r"^(\S+) - - \[[^\]]*\] ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Alembic announces itself at INFO: its plugins when it is imported (every worker boot) and its
# migration context whenever one is made (every /readyz reads the schema's revision through one,
# repositories/schema.py). Only `alembic upgrade` wants those lines (migrations/env.py).
QUIET_LOGGERS = ("alembic.runtime.plugins", "alembic.runtime.migration")


def choose_format(log_format: str | None, app_env: str | None) -> LogFormat:
    """LOG_FORMAT when it names a format; otherwise JSON in production and console elsewhere."""
    if log_format in LOG_FORMATS:
        return log_format
    return "json" if app_env == "production" else "console"


def _iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record: ts, level, logger, message, pid, then the record's own fields."""

    def __init__(self) -> None:
        super().__init__(_JSON_FIELDS, rename_fields=_JSON_NAMES)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        """The timestamp first (ISO 8601, UTC, milliseconds), then python-json-logger's fields."""
        log_data["ts"] = _iso_time(record.created)
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Redact every field: a message, a traceback or any structured field (a User-Agent) may carry a token."""
        return {key: redact_field(value) for key, value in log_data.items()}


class ConsoleFormatter(logging.Formatter):
    """`2026-11-27 10:00:00,123 INFO    posts.audit [req-1] sign_in event=sign_in status=200`."""

    def format(self, record: logging.LogRecord) -> str:
        """The readable line, the record's own fields as key=value, the traceback below."""
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}"
        rid = getattr(record, "request_id", None)
        if rid:
            line += f" [{redact_field(rid)}]"
        line += f" {redact(record.getMessage())}"
        fields = _own_fields(record)
        if fields:
            line += " " + " ".join(f"{key}={redact_field(value)}" for key, value in fields.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + redact(record.exc_text)
        if record.stack_info:
            line += "\n" + redact(self.formatStack(record.stack_info))
        return line


def _own_fields(record: logging.LogRecord) -> Mapping[str, Any]:
    """What the caller passed with `extra=` (the audit and access logs' fields)."""
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")}


class RequestContextFilter(logging.Filter):
    """Tags a record with the request's id (the app says how to get it) and, with traces on, the span's ids."""

    def __init__(self) -> None:
        super().__init__()
        self.request_id: Callable[[], str] | None = None
        self.trace_ids: Callable[[], tuple[str, str] | None] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` unless the record already has one (audit and access lines do); `trace_id`, `span_id`."""
        if self.request_id is not None and not hasattr(record, "request_id") and has_request_context():
            record.request_id = self.request_id()
        if self.trace_ids is not None and not hasattr(record, "trace_id"):
            ids = self.trace_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


class DevServerFilter(logging.Filter):
    """werkzeug's dev-server lines, fit for this stream: no second timestamp, no colour codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message of a `werkzeug` record; leave every other record alone."""
        if record.name == "werkzeug":
            message = _ANSI.sub("", record.getMessage())
            record.msg = _DEV_SERVER_LINE.sub(r"\1 ", message)
            record.args = None
        return True


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record (as logging's last resort does).

    So output captured by replacing sys.stderr (pytest's capsys, a CLI runner) still gets it.
    """

    @property
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current standard error."""


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    """The formatter of one log format."""
    return JsonFormatter() if log_format == "json" else ConsoleFormatter()


def configure_logging(
    log_format: LogFormat, level: int | str, request_id: Callable[[], str] | None = None
) -> StderrHandler:
    """Give the root logger its one handler (reused if present), in `log_format`, at `level`.

    Safe to call again: gunicorn's master calls it, then each worker's app factory does, with
    `request_id`, how to find the current request's id.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        handler.addFilter(RequestContextFilter())
        handler.addFilter(DevServerFilter())
        root.addHandler(handler)
    if request_id is not None:
        for log_filter in handler.filters:
            if isinstance(log_filter, RequestContextFilter):
                log_filter.request_id = request_id
    handler.setFormatter(formatter_for(log_format))
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Python warnings become records too, instead of bare lines on standard error.
    logging.captureWarnings(True)
    return handler


def include_trace_ids(trace_ids: Callable[[], tuple[str, str] | None] | None) -> None:
    """Tag every record with the current span's (trace_id, span_id) as `trace_ids` finds them; None stops it.

    observability.tracing_setup calls it when it turns traces on and off; until then records pay nothing.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, StderrHandler):
            for log_filter in handler.filters:
                if isinstance(log_filter, RequestContextFilter):
                    log_filter.trace_ids = trace_ids


def init_logging(settings: Settings, request_id: Callable[[], str]) -> None:
    """The app factory's hook: configure logging from the settings; records in a request carry its id."""
    configure_logging(choose_format(settings.log_format, settings.app_env), settings.log_level, request_id)


def refuse_to_start(message: str, *, with_traceback: bool = False) -> NoReturn:
    """Say why this process will not start, as one record of the service's log stream, and exit with status 1.

    For what fails before the settings could be read (gunicorn.conf.py, `python -m serving`,
    Alembic): the format comes from LOG_FORMAT and APP_ENV as they stand, JSON in production.
    `with_traceback` puts the exception being handled into the record (its `traceback` field).
    """
    configure_logging(choose_format(os.environ.get("LOG_FORMAT"), os.environ.get("APP_ENV")), logging.INFO)
    logging.getLogger("posts.startup").error("%s", message, exc_info=with_traceback)
    raise SystemExit(1)
