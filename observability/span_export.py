"""What leaves the process as spans: which are sampled, how many may wait, and what they may say.

Three pieces around the OpenTelemetry SDK's own, built by observability.tracing_setup:

- `ServiceSampler`: the configured sampler (OTEL_TRACES_SAMPLER), except that work started off a
  request (a mail from the outbox) is sampled exactly when the request it links to was, and that a
  database statement or Redis command belonging to no request or mail is not traced at all.
- `CountedBatchProcessor`: the SDK's BatchSpanProcessor (its bounded queue and export thread)
  behind a count of the spans it holds, so a span that finds the queue full is dropped *and
  counted* in Prometheus (the SDK only logs it).
- `ScrubbingExporter`: hands each batch to the OTLP exporter without what must never leave the
  process (below), and counts what the collector took or refused.

Never exported: the raw request target and URL (query strings carry ids; an unmatched path can
carry anything: the route is kept), the user agent, error descriptions (a database error quotes
the values it refused, an email address among them: the status code stays, and `error.type`
says what failed), exception messages and stack traces; every other string value goes through
the log redaction (observability.redaction: JWTs, secret query parameters, URL passwords).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from observability.metrics import SPANS_DROPPED_FAILED, SPANS_DROPPED_FULL, SPANS_EXPORTED
from observability.redaction import redact

# Old and stable HTTP semantic conventions alike (OTEL_SEMCONV_STABILITY_OPT_IN chooses).
UNEXPORTED_ATTRIBUTES = frozenset(
    {"http.target", "http.url", "url.full", "url.path", "url.query", "http.user_agent", "user_agent.original"}
)
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"


class ServiceSampler(Sampler):
    """`configured` for requests; links decide for a span that starts a trace of its own; lone client calls are dropped.

    A mail sent from the outbox starts a trace of its own, linked to the request that queued it;
    with a ratio sampler on its own it would be sampled independently of that request, and the
    link would lead nowhere most of the time. A database statement or Redis command with no
    parent ran outside any request or mail (a streamed listing's later batches, background
    retries): alone in a trace it says nothing.
    """

    def __init__(self, configured: Sampler) -> None:
        self._configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """Decide as described on the class; attributes pass through (the SDK creates the span with them)."""
        if not get_current_span(parent_context).get_span_context().is_valid:
            if links:
                sampled = any(link.context.trace_flags.sampled for link in links)
                return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP, attributes)
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
        return self._configured.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        """For the SDK's diagnostics."""
        return f"ServiceSampler{{{self._configured.get_description()}}}"


class ScrubbingExporter(SpanExporter):
    """Sends batches through `exporter` with the unexportable removed (see the module); counts the outcome."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self._lock = threading.Lock()
        self._taken = 0

    @property
    def taken(self) -> int:
        """Spans handed to this exporter so far (by the batch processor's thread)."""
        return self._taken

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub, send, and count the spans as exported or as dropped (the collector refused or did not answer)."""
        with self._lock:
            self._taken += len(spans)
        result = SpanExportResult.FAILURE
        try:
            result = self._exporter.export([scrubbed(span) for span in spans])
        finally:
            (SPANS_EXPORTED if result is SpanExportResult.SUCCESS else SPANS_DROPPED_FAILED).inc(len(spans))
        return result

    def shutdown(self) -> None:
        """Shut the OTLP exporter down (its pending retries end)."""
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held here."""
        return self._exporter.force_flush(timeout_millis)


class CountedBatchProcessor(SpanProcessor):
    """The SDK's BatchSpanProcessor, with spans that would overflow its queue dropped here and counted.

    The SDK's queue drops its oldest span when full and only logs it. Here a span is handed on
    only while fewer than `max_queue_size` handed-on spans have not yet reached the exporter, so
    the SDK's queue never overflows; a span past that is dropped (the newest, not the oldest) and
    counted in posts_api_trace_spans_dropped_total{reason="queue_full"}.
    """

    def __init__(
        self, exporter: ScrubbingExporter, max_queue_size: int, max_export_batch_size: int, schedule_delay_millis: int
    ) -> None:
        self._exporter = exporter
        self._capacity = max_queue_size
        self._lock = threading.Lock()
        self._given = 0
        self._batches = BatchSpanProcessor(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span for export, or count it dropped when the queue is full."""
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            full = self._given - self._exporter.taken >= self._capacity
            if not full:
                self._given += 1
        if full:
            SPANS_DROPPED_FULL.inc()
            return
        self._batches.on_end(span)

    def shutdown(self) -> None:
        """Export what is queued (bounded by the SDK: its shutdown waits at most 30 s), then stop the thread."""
        self._batches.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves this one unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now."""
        return self._batches.force_flush(timeout_millis)


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    """`span` as it may leave the process (see the module); the span itself when nothing needs removing."""
    attributes = _clean_attributes(span.attributes)
    events = [_clean_event(event) for event in span.events]
    name = redact(span.name)
    status = span.status if span.status.description is None else Status(span.status.status_code)
    unchanged = (
        attributes is None
        and name == span.name
        and status is span.status
        and all(clean is event for clean, event in zip(events, span.events, strict=True))
    )
    if unchanged:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean_attributes(attributes: Attributes) -> dict[str, Any] | None:
    """The attributes without unexportable keys and with string values redacted; None when nothing changed."""
    if not attributes:
        return None
    clean: dict[str, Any] = {}
    changed = False
    for key, value in attributes.items():
        if key in UNEXPORTED_ATTRIBUTES:
            changed = True
            continue
        if isinstance(value, str):
            redacted: Any = redact(value)
        elif isinstance(value, Sequence) and value and isinstance(value[0], str):
            redacted = tuple(redact(item) for item in value)  # type: ignore[arg-type]
        else:
            redacted = value
        changed = changed or redacted != value
        clean[key] = redacted
    return clean if changed else None


def _clean_event(event: Event) -> Event:
    """An exception event reduced to the exception's type; another event with its attributes cleaned."""
    if event.name == EXCEPTION_EVENT:
        kind = (event.attributes or {}).get(EXCEPTION_TYPE, "")
        return Event(EXCEPTION_EVENT, {EXCEPTION_TYPE: str(kind)}, event.timestamp)
    attributes = _clean_attributes(event.attributes)
    return event if attributes is None else Event(event.name, attributes, event.timestamp)
