"""The service's Prometheus metrics (prometheus_client; multiprocess mode under gunicorn).

Under gunicorn with METRICS_PORT set, each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR and the master serves their sum (observability.gunicorn_hooks);
elsewhere the values live in the process and nothing serves them. This module only defines
them: observability.instrument counts requests and pool use, cache.listing its lookups,
observability.db_pool the pool's waits, observability.span_export the spans sent to the
trace collector.

Labels are bounded: the endpoint is the route's rule (`/api/v1/posts/get_my_posts`, or
`unmatched` for a 404/405), never the raw path; the method is one of HTTP's usual ones or `other`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "posts_api_"
# From a cached listing (~0.2 ms in process) to an argon2 sign-in (~0.1-0.5 s) and timeouts.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_LABELS = ["method", "endpoint", "status"]

REQUESTS = Counter(f"{PREFIX}http_requests_total", "HTTP responses, by method, route and status.", HTTP_LABELS)
LATENCY = Histogram(
    f"{PREFIX}http_request_duration_seconds",
    "Time from the request reaching the app to its response's status and headers.",
    HTTP_LABELS,
    buckets=LATENCY_BUCKETS,
)
RATE_LIMITED = Counter(f"{PREFIX}rate_limit_refusals_total", "Requests refused with 429, by route.", ["endpoint"])
UNAVAILABLE = Counter(
    f"{PREFIX}unavailable_responses_total",
    "503 responses by cause: database (unreachable during a request), busy (a lock wait or no pooled"
    " connection in time, the database healthy), not_ready (/readyz), other.",
    ["cause"],
)

_LISTING_CACHE = Counter(
    f"{PREFIX}listing_cache_requests_total",
    "get_my_posts cache lookups: hit, miss (read from the database, then cached) or bypass (cache skipped).",
    ["result"],
)
CACHE_HIT = _LISTING_CACHE.labels(result="hit")
CACHE_MISS = _LISTING_CACHE.labels(result="miss")
CACHE_BYPASS = _LISTING_CACHE.labels(result="bypass")

POOL_IN_USE = Gauge(
    f"{PREFIX}db_pool_connections_in_use",
    "Database connections checked out of the pool, summed over live workers.",
    multiprocess_mode="livesum",
)
POOL_WAITS = Counter(f"{PREFIX}db_pool_waits_total", "Checkouts that found every pooled connection in use and waited.")
POOL_WAIT_SECONDS = Counter(
    f"{PREFIX}db_pool_wait_seconds_total", "Time spent waiting for a pooled connection, timeouts included."
)

MAIL_SENT = Counter(f"{PREFIX}mail_sent_total", "Mails handed to the SMTP server (or, in development, the log).")
MAIL_RETRIED = Counter(f"{PREFIX}mail_retries_total", "Failed mail delivery attempts that were retried.")
MAIL_FAILED = Counter(
    f"{PREFIX}mail_failed_total", "Mails given up on: every attempt failed, or preparing the mail failed."
)
MAIL_DROPPED = Counter(f"{PREFIX}mail_dropped_total", "Mails refused because the outbox queue was full.")

_SPANS_DROPPED = Counter(
    f"{PREFIX}trace_spans_dropped_total",
    "Sampled spans never delivered: queue_full (the export queue was full) or export_failed (the collector "
    "refused them or did not answer in time).",
    ["reason"],
)
SPANS_DROPPED_FULL = _SPANS_DROPPED.labels(reason="queue_full")
SPANS_DROPPED_FAILED = _SPANS_DROPPED.labels(reason="export_failed")
SPANS_EXPORTED = Counter(f"{PREFIX}trace_spans_exported_total", "Sampled spans the trace collector accepted.")
