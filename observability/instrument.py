"""Counting requests and database pool use into observability.metrics (the app factory's hook)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, event

import request_state
from config import Settings
from observability.metrics import LATENCY, POOL_IN_USE, RATE_LIMITED, REQUESTS, UNAVAILABLE

STARTED_AT = "posts.metrics.started_at"  # WSGI environ key
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READINESS_ENDPOINT = "health.readyz"

# Children by label values: prometheus_client's labels() takes a lock and builds a tuple per call.
_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}


class RequestTimer:
    """WSGI middleware, outermost: notes when the request reached the app."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Stamp the environ, then hand on."""
        environ[STARTED_AT] = time.perf_counter()
        return self._app(environ, start_response)


def observe_response(response: Response) -> Response:
    """after_request hook: count the response and its latency; 429s by route and 503s by cause too."""
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "other"
    status = response.status_code
    key = (method, endpoint, str(status))
    children = _children.get(key)
    if children is None:
        children = _children[key] = (REQUESTS.labels(*key), LATENCY.labels(*key))
    children[0].inc()
    started = request.environ.get(STARTED_AT)
    if started is not None:
        children[1].observe(time.perf_counter() - started)
    if status == 429:
        RATE_LIMITED.labels(endpoint).inc()
    elif status == 503:
        UNAVAILABLE.labels(unavailable_cause()).inc()
    return response


def unavailable_cause() -> str:
    """Why this request got a 503: not ready, the database unreachable, busy (blueprints.errors says), or other."""
    if request.endpoint == READINESS_ENDPOINT:
        return "not_ready"
    return request_state.current().unavailable_cause or "other"


def _checked_out(*_args: Any) -> None:
    POOL_IN_USE.inc()


def _checked_in(*_args: Any) -> None:
    POOL_IN_USE.dec()


def watch_pool(engine: Engine) -> None:
    """Keep POOL_IN_USE at the number of connections this process has checked out of `engine`."""
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)


def init_metrics(app: Flask, settings: Settings, engine: Engine) -> None:
    """The app factory's hook (after the database is set up): count requests and pool use.

    With METRICS_PORT unset nothing is installed, so requests pay nothing for metrics; the
    listing cache's counters still count in process (a fraction of a microsecond each).
    """
    if settings.metrics_port is None:
        return
    app.wsgi_app = RequestTimer(app.wsgi_app)  # type: ignore[method-assign]
    app.after_request(observe_response)
    watch_pool(engine)
