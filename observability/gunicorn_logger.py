"""gunicorn's logger class for this service (gunicorn.conf.py names it in `logger_class`).

gunicorn's own lines (master and workers) and its access log go to the one handler that
observability.logs puts on the root logger, so they share the app's format. Each access line
is a structured record: method, path, status, duration, bytes, client, user agent, the request
id the app put in the response's X-Request-ID, and with traces on the server span's `trace_id`
and `span_id` when it was sampled. The formatters redact every one of these fields (a token in
the query string or in the User-Agent), as they do every record's. Health probes that succeed
are logged at DEBUG only.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from gunicorn.config import Config
from gunicorn.glogging import Logger

from observability.logs import choose_format, configure_logging, formatter_for
from observability.redaction import redact
from observability.spans import TRACE_IDS_ENVIRON

REQUEST_ID_HEADER = "x-request-id"
MAX_USER_AGENT = 200
# Load balancers and orchestrators ask these every few seconds: a probe that succeeds is
# logged at DEBUG, so it is seen only with LOG_LEVEL=DEBUG; one that fails stays at INFO.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class GunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn.glogging.Logger, writing through the service's one log configuration."""

    def setup(self, cfg: Config) -> None:
        """Let gunicorn set up its loggers, then route its console output through the root handler.

        Output gunicorn sends to standard output or error ("-", the shipped setting) is dropped
        from gunicorn's loggers, which then propagate to the root handler; a log file or syslog
        an operator configured is kept, in the same format.
        """
        super().setup(cfg)
        log_format = choose_format(os.environ.get("LOG_FORMAT"), os.environ.get("APP_ENV"))
        configure_logging(log_format, self.loglevel)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:
                    logger.removeHandler(handler)
                else:
                    handler.setFormatter(formatter_for(log_format))
            logger.propagate = not logger.handlers
        # gunicorn keeps its access log at INFO whatever the level; DEBUG shows the probes too.
        self.access_log.setLevel(min(self.loglevel, logging.INFO))

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """One structured access record per response (replaces gunicorn's access_log_format line)."""
        if not self.access_log_enabled:
            return
        try:
            fields = access_fields(resp, environ, request_time)
            probe = environ.get("PATH_INFO") in PROBE_PATHS and fields["status"] < 400
            level = logging.DEBUG if probe else logging.INFO
            self.access_log.log(level, "%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)
        except Exception:
            self.exception("access log failed")


def access_fields(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
    """The access record's fields from gunicorn's response object, WSGI environ and duration."""
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    fields: dict[str, Any] = {
        "method": environ.get("REQUEST_METHOD", "-"),
        "path": target,
        "status": int(status),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "bytes": getattr(resp, "sent", None),
        "client": environ.get("REMOTE_ADDR"),
        "client_port": environ.get("REMOTE_PORT"),
        # Redacted before it is cut (the formatter redacts again): a cut token may no longer look like one.
        "user_agent": redact(environ.get("HTTP_USER_AGENT", ""))[:MAX_USER_AGENT] or None,
    }
    for name, value in resp.headers:
        if name.lower() == REQUEST_ID_HEADER:
            fields["request_id"] = value
            break
    trace_ids = environ.get(TRACE_IDS_ENVIRON)
    if trace_ids is not None:
        fields["trace_id"], fields["span_id"] = trace_ids
    return fields
