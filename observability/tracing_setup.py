"""This process's trace pipeline: the OpenTelemetry SDK, the OTLP/HTTP exporter and the instrumentations.

Built by observability.tracing.init_tracing, only when an endpoint is configured, in the process
that serves (each gunicorn worker, after the fork and after gevent's monkey-patching, so the
SDK's export thread is one of the worker's greenlets and its socket waits yield to the hub):

- the SDK: a TracerProvider with the configured sampler (observability.span_export.ServiceSampler
  around it), the resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), and the bounded,
  counted batch export to the collector over OTLP/HTTP (span_export). The exporter reads its
  remaining standard variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION,
  certificates).
- Flask: one server span per request, named by route (an unmatched request by its method alone),
  continuing a W3C `traceparent` from nginx or the client; `request_id` as an attribute, and
  `error.type` when a handler turned an exception into the response. 5xx answers set the span's
  status (the instrumentation's rule). Its span starts before every other before_request hook,
  so requests refused there (413, 429) have theirs too.
- SQLAlchemy (the app's engine): a span per statement, with the statement's text, whose values
  are bound parameters and so never part of it; a `connect` span for each pool checkout.
- Redis (every client of the process): a span per command, its arguments never recorded
  (`GET ?`).
- log lines: a sampled span's `trace_id` and `span_id` (observability.logs), the access line too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from flask import Flask, request
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    Status,
    StatusCode,
    format_span_id,
    format_trace_id,
    get_current_span,
)
from opentelemetry.util.http import sanitize_method
from sqlalchemy import Engine

import request_state
from config import Settings
from observability.logs import include_trace_ids
from observability.redaction import redact
from observability.span_export import CountedBatchProcessor, ScrubbingExporter, ServiceSampler
from observability.spans import NO_SPAN, TRACE_IDS_ENVIRON, SpanLike

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "posts-api"
SCOPE = "posts-api"
REQUEST_ID_ATTRIBUTE = "request_id"
ERROR_TYPE_ATTRIBUTE = "error.type"


class Pipeline:
    """The SDK and the instrumentations of one process (see the module); `shutdown` flushes and undoes them."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        endpoint = settings.otlp_traces_url()
        self._exporter = ScrubbingExporter(OTLPSpanExporter(endpoint=endpoint))
        self._processor = CountedBatchProcessor(
            self._exporter,
            max_queue_size=settings.otel_bsp_max_queue_size,
            max_export_batch_size=settings.otel_bsp_max_export_batch_size,
            schedule_delay_millis=settings.otel_bsp_schedule_delay,
        )
        self.provider = TracerProvider(
            sampler=ServiceSampler(configured_sampler(settings)), resource=resource(settings)
        )
        self.provider.add_span_processor(self._processor)
        self._tracer = self.provider.get_tracer(SCOPE)
        self._apps: list[Flask] = []
        # skip_dep_check: the instrumentation declares SQLAlchemy < 2.1, yet the engine events it
        # listens to are unchanged in 2.1 (tests/e2e/test_tracing.py sees its spans).
        SQLAlchemyInstrumentor().instrument(
            engine=engine, tracer_provider=self.provider, enable_commenter=False, skip_dep_check=True
        )
        RedisInstrumentor().instrument(tracer_provider=self.provider)
        include_trace_ids(log_ids)
        log.info("tracing on: spans go to %s (sampler %s)", redact(endpoint or ""), settings.otel_traces_sampler)

    def trace_app(self, app: Flask, request_id: Callable[[], str]) -> None:
        """One server span per request of `app`, started before its other before_request hooks."""
        hooks = app.before_request_funcs.setdefault(None, [])
        before = list(hooks)
        FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]  # the package ships no hints here
            app,
            request_hook=_request_hook(request_id),
            response_hook=_response_hook,
            tracer_provider=self.provider,
            enable_commenter=False,
        )
        for hook in [hook for hook in hooks if hook not in before]:
            hooks.remove(hook)
            hooks.insert(0, hook)
        self._apps.append(app)

    def child(self, name: str) -> AbstractContextManager[SpanLike]:
        """A span under the current one (see observability.tracing.span); none outside a sampled span.

        Every standard sampler decides a child as its parent was decided (the parent's flag or
        the same trace id), so skipping it saves the unsampled requests the sampler's work; and
        work outside any request (the CLI's hashing) has no trace to belong to.
        """
        if not get_current_span().is_recording():
            return NO_SPAN
        return self._span(name, None, ())

    def current(self) -> SpanContext | None:
        """The current span's context, when there is one."""
        context = get_current_span().get_span_context()
        return context if context.is_valid else None

    def follow_up(self, name: str, came_from: object | None) -> AbstractContextManager[Step]:
        """A span in a trace of its own, linked to `came_from` (see observability.tracing.follow_up)."""
        links = [Link(came_from)] if isinstance(came_from, SpanContext) else []
        return self._span(name, Context(), links)

    @contextmanager
    def _span(self, name: str, parent: Context | None, links: list[Link] | tuple[()]) -> Iterator[Step]:
        """The span as the current one; an exception fails it with its type (never its message)."""
        with self._tracer.start_as_current_span(
            name, context=parent, links=links, record_exception=False, set_status_on_exception=False
        ) as current:
            step = Step(current)
            try:
                yield step
            except Exception as error:
                step.fail(type(error).__qualname__)
                raise

    def shutdown(self) -> None:
        """Export what is still queued (bounded), stop the export thread, undo the instrumentations."""
        include_trace_ids(None)
        try:
            self.provider.shutdown()
        finally:
            for app in self._apps:
                FlaskInstrumentor.uninstrument_app(app)  # type: ignore[no-untyped-call]
            SQLAlchemyInstrumentor().uninstrument()
            RedisInstrumentor().uninstrument()


class Step:
    """One of the service's own spans, as observability.spans.SpanLike describes it."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        """Record one fact about the span."""
        self._span.set_attribute(key, value)

    def fail(self, error_type: str) -> None:
        """Status ERROR, with `error.type`."""
        self._span.set_attribute(ERROR_TYPE_ATTRIBUTE, error_type)
        self._span.set_status(Status(StatusCode.ERROR))


def configured_sampler(settings: Settings) -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER names, with OTEL_TRACES_SAMPLER_ARG as its ratio (default 1)."""
    ratio = 1.0 if settings.otel_traces_sampler_arg is None else settings.otel_traces_sampler_arg
    samplers: dict[str, Callable[[], Sampler]] = {
        "always_on": lambda: ALWAYS_ON,
        "always_off": lambda: ALWAYS_OFF,
        "traceidratio": lambda: TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: ParentBased(ALWAYS_ON),
        "parentbased_always_off": lambda: ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": lambda: ParentBasedTraceIdRatio(ratio),
    }
    return samplers[settings.otel_traces_sampler]()


def resource(settings: Settings) -> Resource:
    """Who sends the spans: OTEL_RESOURCE_ATTRIBUTES, with OTEL_SERVICE_NAME (default posts-api) as service.name."""
    attributes: dict[str, Any] = dict(settings.otel_resource_attributes_map())
    attributes[SERVICE_NAME] = settings.otel_service_name or attributes.get(SERVICE_NAME) or DEFAULT_SERVICE_NAME
    return Resource.create(attributes)


def log_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids, hex, for log lines; None unless it is sampled (it will exist)."""
    context = get_current_span().get_span_context()
    if not context.trace_flags.sampled:
        return None
    return format_trace_id(context.trace_id), format_span_id(context.span_id)


def _request_hook(request_id: Callable[[], str]) -> Callable[[Span, dict[str, Any]], None]:
    def annotate(span: Span, environ: dict[str, Any]) -> None:
        """Right after the server span starts: name it by method alone if no route matched; its request id."""
        if not span.is_recording():
            return
        if request.url_rule is None:
            method = sanitize_method(request.method)
            span.update_name("HTTP" if method == "_OTHER" else method)
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id())
        context = span.get_span_context()
        environ[TRACE_IDS_ENVIRON] = (format_trace_id(context.trace_id), format_span_id(context.span_id))

    return annotate


def _response_hook(span: Span | None, _status: str, _headers: list[tuple[str, str]]) -> None:
    """As the response starts: the type of the exception a handler answered (500, 503), if any."""
    if span is None or not span.is_recording():
        return
    error_type = request_state.current().error_type
    if error_type:
        span.set_attribute(ERROR_TYPE_ATTRIBUTE, error_type)
