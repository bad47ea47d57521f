"""Traces in process: the OTEL_* settings, tracing off (nothing loaded), what may leave the process
(observability.span_export), the sampler's rules, and an app sending to a real OTLP/HTTP collector.

Through gunicorn and gevent: tests/e2e/test_tracing.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from prometheus_client import REGISTRY
from sqlalchemy import delete

from app import create_app
from config import ROOT_DIR, ConfigError, Settings, load_settings
from models.tables import PostRow, UserRow
from observability import tracing
from observability.span_export import ScrubbingExporter, ServiceSampler, scrubbed
from observability.spans import NO_SPAN
from resources import resources
from tests.support.api import FORGOT_PASSWORD, LIST, SIGN_UP, Api
from tests.support.net import free_port
from tests.support.otlp import CLIENT_KIND, SERVER_KIND, OtlpReceiver, ReceivedSpan
from tests.support.smtp import SmtpServer

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"


# --- Settings ----------------------------------------------------------------------------


def test_traces_are_off_unless_an_endpoint_is_set() -> None:
    assert load_settings({}).otlp_traces_url() is None
    assert load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}).otlp_traces_url() is None
    on = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert on.otlp_traces_url() == "http://collector:4318/v1/traces"
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/traces"}
    assert load_settings(both).otlp_traces_url() == "https://b/traces"
    disabled = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
    assert disabled.otlp_traces_url() is None


def test_resource_attributes_are_parsed_and_the_service_name_wins() -> None:
    settings = load_settings({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=from%20attrs"})
    assert settings.otel_resource_attributes_map() == {"deployment.environment": "prod", "service.name": "from attrs"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "tracehost:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://secret-host:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:///v1/traces-secret"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_TRACES_SAMPLER_ARG", "often"),
        ("OTEL_RESOURCE_ATTRIBUTES", "secret-without-equals"),
        ("OTEL_PROPAGATORS", "tracecontext,b3secret"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-77"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_SDK_DISABLED", "perhaps"),
    ],
)
def test_a_bad_tracing_setting_is_named_in_one_line_without_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}:") and "\n" not in message, message
    assert value not in message


def test_a_batch_larger_than_the_queue_is_refused() -> None:
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE must not exceed OTEL_BSP_MAX_QUEUE_SIZE"):
        load_settings({"OTEL_BSP_MAX_QUEUE_SIZE": "100"})


# --- Off -----------------------------------------------------------------------------------


# redis-py imports OpenTelemetry's API and metrics SDK itself when they are installed (its own
# opt-in metrics); the trace SDK, the instrumentations and the exporter are ours to load.
LOADED_ONLY_WHEN_ON = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation",
    "opentelemetry.exporter",
    "observability.tracing_setup",
)


def test_with_tracing_off_the_sdk_is_never_loaded_and_spans_are_one_shared_no_op() -> None:
    assert tracing.span("cache lookup") is NO_SPAN
    assert tracing.follow_up("mail send", tracing.origin()) is NO_SPAN
    script = (
        "import sys; from app import create_app; from config import load_settings; "
        "app = create_app(load_settings({}, app_env='testing', jwt_secret_key='x' * 32, cache_backend='simple')); "
        "response = app.test_client().get('/healthz'); assert response.status_code == 200; "
        "print(sorted(name for name in sys.modules if name.startswith(LOADED_ONLY_WHEN_ON)))"
    ).replace("LOADED_ONLY_WHEN_ON", repr(LOADED_ONLY_WHEN_ON))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- What leaves the process ----------------------------------------------------------------


def _spans(make: Callable[[Any], None]) -> list[ReadableSpan]:
    """Spans a real SDK tracer made (kept in the SDK's in-memory exporter)."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    make(provider.get_tracer("test"))
    provider.shutdown()
    return list(kept.get_finished_spans())


def test_the_raw_target_user_agent_error_text_and_exception_messages_never_leave() -> None:
    def make(tracer: Any) -> None:
        with tracer.start_as_current_span("GET", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.target", "/api/v1/posts/delete_my_post?post_id=42")
            span.set_attribute("http.url", "http://host/x?token=abc")
            span.set_attribute("url.query", "token=abc")
            span.set_attribute("http.user_agent", "ada@example.com's phone")
            span.set_attribute("http.route", "/api/v1/posts/delete_my_post")
            span.set_attribute("request_id", JWT)
            span.set_attribute("db.statement", "SELECT * FROM users WHERE id = %(id_1)s")
            try:
                raise ValueError("Duplicate entry 'ada@example.com' for key 'email'")
            except ValueError as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"IntegrityError: {error}"))

    (span,) = _spans(make)
    clean = scrubbed(span)
    assert clean.attributes == {
        "http.route": "/api/v1/posts/delete_my_post",
        "request_id": "[REDACTED]",
        "db.statement": "SELECT * FROM users WHERE id = %(id_1)s",
    }
    assert clean.status.status_code == span.status.status_code and clean.status.description is None
    assert [(event.name, dict(event.attributes or {})) for event in clean.events] == [
        ("exception", {"exception.type": "ValueError"})
    ]
    assert (clean.context, clean.parent, clean.kind, clean.start_time, clean.end_time) == (
        span.context,
        span.parent,
        span.kind,
        span.start_time,
        span.end_time,
    )


def test_a_span_with_nothing_to_remove_is_exported_as_it_is() -> None:
    def make(tracer: Any) -> None:
        with tracer.start_as_current_span("cache lookup") as span:
            span.set_attribute("cache.result", "hit")

    (span,) = _spans(make)
    assert scrubbed(span) is span


def test_a_refused_export_is_counted_as_dropped() -> None:
    refused = free_port()
    exporter = ScrubbingExporter(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{refused}/v1/traces", timeout=0.5))
    spans = _spans(lambda tracer: tracer.start_span("one").end())
    name = "posts_api_trace_spans_dropped_total"
    before = REGISTRY.get_sample_value(name, {"reason": "export_failed"}) or 0.0
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert REGISTRY.get_sample_value(name, {"reason": "export_failed"}) == before + 1
    assert exporter.taken == 1
    exporter.shutdown()


def _context(*, sampled: bool, remote: bool = False) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(0x1234, 0x5678, is_remote=remote, trace_flags=flags)


@pytest.mark.parametrize("linked_sampled", [True, False])
def test_a_trace_started_off_a_request_is_sampled_as_that_request_was(linked_sampled: bool) -> None:
    # The configured sampler would decide the opposite: the link decides.
    sampler = ServiceSampler(ALWAYS_OFF if linked_sampled else ALWAYS_ON)
    links = [Link(_context(sampled=linked_sampled))]
    decision = sampler.should_sample(Context(), 0xABC, "mail send", SpanKind.INTERNAL, {"a": 1}, links).decision
    assert decision is (Decision.RECORD_AND_SAMPLE if linked_sampled else Decision.DROP)


def test_a_statement_outside_any_request_is_not_traced_but_requests_are() -> None:
    sampler = ServiceSampler(ALWAYS_ON)
    assert sampler.should_sample(Context(), 1, "SELECT posts", SpanKind.CLIENT).decision is Decision.DROP
    assert sampler.should_sample(Context(), 1, "GET /", SpanKind.SERVER).decision is Decision.RECORD_AND_SAMPLE
    in_request = set_span_in_context(NonRecordingSpan(_context(sampled=True)))
    assert sampler.should_sample(in_request, 1, "SELECT posts", SpanKind.CLIENT).decision is Decision.RECORD_AND_SAMPLE


# --- An app that traces, in process -------------------------------------------------------------


@pytest.fixture
def traced_app(settings: Settings, collector: OtlpReceiver, smtp_server: SmtpServer) -> Iterator[Flask]:
    """The app sending its spans to `collector` within 50 ms; tracing shut down after."""
    overrides = {
        "otel_exporter_otlp_endpoint": collector.endpoint,
        "otel_bsp_schedule_delay": 50,
        **smtp_server.settings(),
        "smtp_security": "none",
    }
    application = create_app(load_settings({}, **{**settings.model_dump(), **overrides}))
    try:
        yield application
    finally:
        tracing.shutdown_tracing()
        with resources(application).engine.begin() as connection:
            connection.execute(delete(PostRow))
            connection.execute(delete(UserRow))
        resources(application).engine.dispose()


def _server(spans: list[ReceivedSpan], route: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == SERVER_KIND and s.attributes.get("http.route") == route]


def test_an_app_in_process_traces_its_requests_and_its_mail_then_stops(
    traced_app: Flask, collector: OtlpReceiver, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(traced_app.test_client())
    token = api.token()
    assert api.listing(token).status_code == 200
    assert api.forgot_password().status_code == 202
    smtp_server.wait_for(1)

    spans = collector.wait_for(lambda s: bool(_server(s, LIST)) and any(x.name == "mail send" for x in s))
    (listing,) = _server(spans, LIST)
    assert any(s.trace_id == listing.trace_id and s.kind == CLIENT_KIND for s in spans)
    (forgot,) = _server(spans, FORGOT_PASSWORD)
    (mail,) = [s for s in spans if s.name == "mail send"]
    # The outbox's thread is a real thread here (no gevent): the link crosses it all the same.
    assert mail.links == [(forgot.trace_id, forgot.span_id)] and mail.trace_id != forgot.trace_id
    (sign_up,) = _server(spans, SIGN_UP)
    assert f"trace_id={sign_up.trace_id}" in capsys.readouterr().err  # the sign-up's audit line

    tracing.shutdown_tracing()
    assert tracing.span("cache lookup") is NO_SPAN
    assert tracing.origin() is None
