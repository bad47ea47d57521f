"""Traces (OpenTelemetry), off unless an OTLP endpoint is configured; what the rest of the service calls.

`init_tracing` (the app factory) builds this process's pipeline when OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and OTEL_SDK_DISABLED is not: the SDK, its export
thread and the instrumentations (observability.tracing_setup). The app loads in each gunicorn
worker after the fork (preload_app stays off), so each worker starts its own; `shutdown_tracing`
(gunicorn's worker_exit hook) sends what a worker still holds as it exits.

The service's own spans come from `span` (a step of a request: the listing's cache lookup,
password hashing) and `follow_up` (work a request queued, in a trace of its own linked to the
request: the mail from the outbox, with the link taken by `origin` where the work was queued).
While tracing is off they return one shared object that does nothing, and nothing else runs.
This module imports neither Flask nor the SDK, so services/ may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from observability.spans import NO_SPAN, SpanLike

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from config import Settings
    from observability.tracing_setup import Pipeline

_pipeline: Pipeline | None = None


def span(name: str) -> AbstractContextManager[SpanLike]:
    """`with span("cache lookup") as step:`, a child of the current span; nothing if off or outside a sampled span."""
    pipeline = _pipeline
    if pipeline is None:
        return NO_SPAN
    return pipeline.child(name)


def origin() -> object | None:
    """Where work being queued now comes from (the current span), for `follow_up`; None while tracing is off."""
    pipeline = _pipeline
    return None if pipeline is None else pipeline.current()


def follow_up(name: str, came_from: object | None) -> AbstractContextManager[SpanLike]:
    """A span starting a trace of its own, linked to `came_from` (what `origin` gave); nothing while off."""
    pipeline = _pipeline
    if pipeline is None:
        return NO_SPAN
    return pipeline.follow_up(name, came_from)


def init_tracing(app: Flask, settings: Settings, engine: Engine, request_id: Callable[[], str]) -> None:
    """The app factory's hook: trace `app`'s requests, `engine`'s statements and Redis, when configured.

    With no endpoint configured (or OTEL_SDK_DISABLED=true) nothing is installed: requests pay
    nothing, and the OpenTelemetry SDK is not even imported. The pipeline is made once per
    process; a second app in the same process (tests) shares it.
    """
    global _pipeline
    if settings.otlp_traces_url() is None:
        return
    from observability.tracing_setup import Pipeline

    if _pipeline is None:
        _pipeline = Pipeline(settings, engine)
    _pipeline.trace_app(app, request_id)


def shutdown_tracing() -> None:
    """Send the spans this process still holds (bounded), stop its export thread, and turn tracing off."""
    global _pipeline
    pipeline, _pipeline = _pipeline, None
    if pipeline is not None:
        pipeline.shutdown()
