"""The service's own spans as the rest of the code sees them, and the one that does nothing.

Shared by observability.tracing (what callers use) and observability.tracing_setup (the SDK
behind it), so neither imports the other for these names.
"""

from __future__ import annotations

from typing import Protocol

AttributeValue = str | bool | int | float
# WSGI environ key: the sampled server span's (trace_id, span_id), for the access log line.
TRACE_IDS_ENVIRON = "posts.trace_ids"


class SpanLike(Protocol):
    """What the service does with a span of its own: say what happened, or that it failed."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Record one fact about the span (never a secret, an address or a post's text)."""
        ...

    def fail(self, error_type: str) -> None:
        """Mark the span failed (status ERROR), `error_type` saying how, briefly (an exception's class name)."""
        ...


class _NoSpan:
    """What `span` and `follow_up` give while tracing is off: a context manager and a span that do nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        return None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Nothing to record."""

    def fail(self, error_type: str) -> None:
        """Nothing to record."""


NO_SPAN = _NoSpan()
