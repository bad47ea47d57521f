"""A real OTLP/HTTP trace collector for tests: what the exporter sends, decoded with opentelemetry-proto.

`OtlpReceiver` listens on 127.0.0.1 (a free port) for `POST /v1/traces` (protobuf, plain, gzip or
deflate), as an OpenTelemetry Collector would, and keeps every request's decoded body
(`payloads`, for searching everything that left the service) and every span in it, flattened
(`spans`). It can be slow (`delay` seconds before each answer) or refuse (`status`), and listen
on a given port (a collector that comes back where it was).
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.support.net import free_port

TRACES_PATH = "/v1/traces"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER
CLIENT_KIND = 3
INTERNAL_KIND = 1
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector got it; ids as lowercase hex, attributes as Python values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    links: list[tuple[str, str]]  # (trace id, span id) of each linked span
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def decode(body: bytes) -> list[ReceivedSpan]:
    """Every span of one ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        events=[(event.name, _attributes(event.attributes)) for event in span.events],
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


@dataclass
class _Store:
    delay: float
    status: int
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    payloads: list[bytes] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        store = self.server.store
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with store.lock:
            store.requests += 1
        if store.delay:
            store.stopping.wait(store.delay)
        if self.path != TRACES_PATH or store.status != 200:
            self.send_response(404 if self.path != TRACES_PATH else store.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        spans = decode(body)
        with store.lock:
            store.payloads.append(body)
            store.spans.extend(spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the exporter's requests are what the tests read, not the receiver's log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, store: _Store) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.store = store


class OtlpReceiver:
    """An OTLP/HTTP trace endpoint on 127.0.0.1 that keeps what it receives; slow or refusing on request."""

    def __init__(self, *, delay: float = 0.0, status: int = 200, port: int | None = None) -> None:
        self.port = port or free_port()
        self._store = _Store(delay, status)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        """Listen and serve on a thread of its own."""
        self._server = _Server(self.port, self._store)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; a request held by `delay` is answered at once."""
        if self._server is None:
            return
        self._store.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def answer_at_once(self) -> None:
        """From now on answer without the delay (a slow collector recovered)."""
        self._store.delay = 0.0

    @property
    def requests(self) -> int:
        """Export requests received so far (answered or not yet)."""
        with self._store.lock:
            return self._store.requests

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in order of arrival."""
        with self._store.lock:
            return list(self._store.spans)

    @property
    def payloads(self) -> list[bytes]:
        """Every export request's body, decompressed (protobuf)."""
        with self._store.lock:
            return list(self._store.payloads)

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 20.0) -> list[ReceivedSpan]:
        """Every span received, once `predicate` holds for them; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(spans := self.spans):
            assert time.monotonic() < deadline, f"after {timeout}s the collector has {[s.name for s in spans]}"
            time.sleep(0.05)
        return spans
