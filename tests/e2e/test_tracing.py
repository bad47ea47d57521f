"""Traces through a real gunicorn (gevent workers) to a real OTLP/HTTP collector on 127.0.0.1.

The collector (tests.support.otlp) decodes what the exporter sends with opentelemetry-proto. A
listing is one trace (server, cache lookup and database spans), continuing a `traceparent`; a
sign-in has its hashing span; a reset mail's span is linked to the request that queued it; a
`traceparent` sent through the shipped nginx continues its trace; no
span carries a secret, an address or a post's text; a collector that is down or slow costs the
requests nothing (the drops are counted); spans still queued leave on HUP and SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import (
    CLOSE,
    LIMIT,
    TIMEOUT,
    StartServer,
    add_post,
    insert_unreadable_post,
    json_body_of_size,
    log_records,
    mail_env,
    raw_post,
    sign_up,
)
from tests.e2e.test_metrics import scrape, value
from tests.support.api import (
    ADD,
    CHANGE_PASSWORD,
    DELETE,
    FORGOT_PASSWORD,
    LIST,
    REFRESH,
    RESET_PASSWORD,
    SIGN_IN,
    SIGN_OUT,
    SIGN_UP,
    bearer,
)
from tests.support.gunicorn import LiveServer
from tests.support.net import free_port
from tests.support.nginx import NginxServer, nginx_path
from tests.support.otlp import CLIENT_KIND, INTERNAL_KIND, SERVER_KIND, STATUS_ERROR, OtlpReceiver, ReceivedSpan
from tests.support.redis import RedisServer
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

StartCollector = Callable[..., OtlpReceiver]
PARENT_TRACE, PARENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")
# Far above a request on a loaded machine, far below what an export blocking the worker would cost.
REQUEST_BOUND_SECONDS = 2.0


def traced(collector: OtlpReceiver, **extra: str) -> dict[str, str]:
    """The environment that sends one worker's spans to `collector` within 0.1 s of their end."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "WEB_CONCURRENCY": "1",
        **extra,
    }


def server_span(spans: list[ReceivedSpan], request_id: str) -> ReceivedSpan | None:
    """The server span of the request that sent this X-Request-ID."""
    found = [s for s in spans if s.kind == SERVER_KIND and s.attributes.get("request_id") == request_id]
    assert len(found) <= 1, found
    return found[0] if found else None


def served(request_id: str) -> Callable[[list[ReceivedSpan]], bool]:
    """wait_for's predicate: the server span of this request has arrived."""
    return lambda spans: server_span(spans, request_id) is not None


def the_server_span(spans: list[ReceivedSpan], request_id: str) -> ReceivedSpan:
    """The server span of this request (it must be there)."""
    span = server_span(spans, request_id)
    assert span is not None, [s.name for s in spans]
    return span


def trace_of(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    """Every span of `root`'s trace."""
    return [s for s in spans if s.trace_id == root.trace_id]


def descends_from(spans: list[ReceivedSpan], span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
    """Whether `ancestor` is on `span`'s chain of parents."""
    by_id = {s.span_id: s for s in spans if s.trace_id == span.trace_id}
    current: ReceivedSpan | None = span
    while current is not None:
        if current.span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_span_id)
    return False


def get(live: LiveServer, path: str, request_id: str, **headers: str) -> requests.Response:
    """GET `path` with this X-Request-ID (and more headers), on a connection of its own."""
    return requests.get(live.base + path, headers={"X-Request-ID": request_id, **CLOSE, **headers}, timeout=TIMEOUT)


def post(live: LiveServer, path: str, request_id: str, body: dict[str, Any], **headers: str) -> requests.Response:
    """POST JSON `body` to `path` with this X-Request-ID."""
    headers = {"X-Request-ID": request_id, **CLOSE, **headers}
    return requests.post(live.base + path, json=body, headers=headers, timeout=TIMEOUT)


def access_line(live: LiveServer, request_id: str) -> dict[str, Any]:
    """The access log record of this request, once gunicorn has written it."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        lines = [
            r for r in log_records(live.log()) if r["logger"] == "gunicorn.access" and r.get("request_id") == request_id
        ]
        if lines:
            return lines[0]
        assert time.monotonic() < deadline, live.log_tail()
        time.sleep(0.05)


def test_a_listing_is_one_trace_with_server_cache_and_database_spans(
    start_server: StartServer, database_url: str, collector: OtlpReceiver
) -> None:
    live = start_server(database_url, **traced(collector))
    token = sign_up(live.base, "ada@example.com")["access_token"]
    add_post(live.base, token, "first post")
    assert get(live, LIST, "listing-miss", **bearer(token)).status_code == 200
    traceparent = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
    assert get(live, LIST, "listing-hit", traceparent=traceparent, **bearer(token)).status_code == 200

    spans = collector.wait_for(lambda s: served("listing-miss")(s) and served("listing-hit")(s))
    miss = the_server_span(spans, "listing-miss")
    assert miss.name == "GET /api/v1/posts/get_my_posts"
    assert miss.attributes["http.route"] == LIST and miss.attributes["http.status_code"] == 200
    assert miss.parent_span_id == "" and miss.resource["service.name"] == "posts-api"
    trace = trace_of(spans, miss)
    # One trace: every span of it hangs under the request's server span.
    assert all(descends_from(spans, span, miss) for span in trace), [(s.name, s.parent_span_id) for s in trace]
    lookups = [s for s in trace if s.name == "cache lookup"]
    assert [(s.parent_span_id, s.kind, s.attributes) for s in lookups] == [
        (miss.span_id, INTERNAL_KIND, {"cache.result": "miss"})
    ]
    reads = [s for s in trace if s.kind == CLIENT_KIND and "FROM posts" in str(s.attributes.get("db.statement"))]
    assert reads, [(s.name, s.attributes) for s in trace]
    assert all(s.attributes["db.statement"].startswith("SELECT") for s in reads)

    # The second continues the client's trace, and is served from the cache: no posts read.
    hit = the_server_span(spans, "listing-hit")
    assert (hit.trace_id, hit.parent_span_id) == (PARENT_TRACE, PARENT_SPAN)
    hit_trace = trace_of(spans, hit)
    assert [s.attributes for s in hit_trace if s.name == "cache lookup"] == [{"cache.result": "hit"}]
    assert not [s for s in hit_trace if "FROM posts" in str(s.attributes.get("db.statement"))]

    # Log lines carry the ids next to the request id.
    line = access_line(live, "listing-miss")
    assert (line["trace_id"], line["span_id"]) == (miss.trace_id, miss.span_id)


def test_sign_in_hashes_in_a_span_and_errors_set_the_status(
    start_server: StartServer, database_url: str, collector: OtlpReceiver
) -> None:
    live = start_server(database_url, **traced(collector, RATE_LIMIT_SIGN_IN_FAILURES="1 per 15 minutes"))
    user = sign_up(live.base, "ada@example.com")
    good = {"email_address": "ada@example.com", "password": "correct horse battery"}
    assert post(live, SIGN_IN, "sign-in", good).status_code == 200
    wrong = {"email_address": "ada@example.com", "password": "not the password"}
    assert post(live, SIGN_IN, "sign-in-wrong", wrong).status_code == 401
    assert post(live, SIGN_IN, "sign-in-limited", wrong).status_code == 429
    oversized = json_body_of_size(LIMIT + 1)
    headers = {"X-Request-ID": "too-large", "Content-Type": "application/json", **bearer(user["access_token"])}
    assert raw_post(live.port, ADD, oversized, headers, chunked=False).status == 413
    assert get(live, f"/api/v1/posts/{uuid.uuid4()}", "unmatched").status_code == 404
    insert_unreadable_post(database_url, user["id"])
    assert get(live, LIST, "broken", **bearer(user["access_token"])).status_code == 500

    spans = collector.wait_for(
        lambda s: all(served(r)(s) for r in ("sign-in", "sign-in-limited", "too-large", "unmatched", "broken"))
    )
    sign_in = the_server_span(spans, "sign-in")
    hashing = [s for s in trace_of(spans, sign_in) if s.name == "password verify"]
    assert [(s.parent_span_id, s.kind) for s in hashing] == [(sign_in.span_id, INTERNAL_KIND)]
    assert sign_in.status_code != STATUS_ERROR

    refused = the_server_span(spans, "sign-in-wrong")
    assert refused.attributes["http.status_code"] == 401 and refused.status_code != STATUS_ERROR
    limited = the_server_span(spans, "sign-in-limited")
    assert limited.name == "POST /api/v1/auth/sign_in" and limited.attributes["http.status_code"] == 429
    # Refused by the body limit's before_request hook, yet traced: the span starts before it.
    too_large = the_server_span(spans, "too-large")
    assert too_large.name == f"POST {ADD}" and too_large.attributes["http.status_code"] == 413

    unmatched = the_server_span(spans, "unmatched")
    assert unmatched.name == "GET" and "http.route" not in unmatched.attributes

    broken = the_server_span(spans, "broken")
    assert broken.status_code == STATUS_ERROR and broken.attributes["http.status_code"] == 500
    assert broken.attributes.get("error.type"), broken.attributes
    assert broken.status_message == ""


def _token_of(smtp: SmtpServer, count: int) -> str:
    message = smtp.wait_for(count, timeout=30)[count - 1].message
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    match = _TOKEN.search(str(part.get_content()))
    assert match
    return match[1]


def test_a_reset_mail_is_a_span_linked_to_the_request_that_queued_it(
    start_server: StartServer, database_url: str, collector: OtlpReceiver, smtp_server: SmtpServer
) -> None:
    live = start_server(database_url, **traced(collector, **mail_env(smtp_server.port)))
    sign_up(live.base, "ada@example.com")
    ada = {"email_address": "ada@example.com"}
    sampled = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
    assert post(live, FORGOT_PASSWORD, "forgot-sampled", ada, traceparent=sampled).status_code == 202
    smtp_server.wait_for(1, timeout=30)
    # A request its caller chose not to sample: its mail is not sampled either, although the
    # configured sampler (parentbased_always_on) would sample a trace of its own.
    unsampled = f"00-{uuid.uuid4().hex}-{PARENT_SPAN}-00"
    assert post(live, FORGOT_PASSWORD, "forgot-unsampled", ada, traceparent=unsampled).status_code == 202
    smtp_server.wait_for(2, timeout=30)
    assert post(live, FORGOT_PASSWORD, "forgot-after", {"email_address": "nobody@example.com"}).status_code == 202

    spans = collector.wait_for(
        lambda s: served("forgot-after")(s) and len([x for x in s if x.name == "mail send"]) >= 2
    )
    request = the_server_span(spans, "forgot-sampled")
    assert server_span(spans, "forgot-unsampled") is None
    mails = [s for s in spans if s.name == "mail send"]
    linked = [s for s in mails if s.links == [(request.trace_id, request.span_id)]]
    assert len(linked) == 1, [(s.links, s.trace_id) for s in mails]
    mail = linked[0]
    # A trace of its own (the mail went out after the answer), linked to the request.
    assert mail.trace_id != request.trace_id and mail.parent_span_id == ""
    assert mail.status_code != STATUS_ERROR
    # The job's database work (issuing the token) is inside the mail's span.
    work = [s for s in trace_of(spans, mail) if s.kind == CLIENT_KIND and "db.statement" in s.attributes]
    assert work and all(descends_from(spans, s, mail) for s in work)
    # The unsampled request's mail is not there; the last request's (no such account) is.
    after = the_server_span(spans, "forgot-after")
    assert sorted(s.links[0][0] for s in mails) == sorted([request.trace_id, after.trace_id])


def test_no_span_carries_a_token_a_password_an_address_or_a_post(
    start_server: StartServer,
    database_url: str,
    collector: OtlpReceiver,
    smtp_server: SmtpServer,
    redis_server: RedisServer,
) -> None:
    env = traced(collector, REDIS_URL=redis_server.url, **mail_env(smtp_server.port))
    live = start_server(database_url, **env)
    email, password, new_password = "secret.person@example.com", "a password nobody knows", "a newer secret passphrase"
    text = "the text of a very private post"
    agent = {"User-Agent": f"client of {email}"}
    user = post(live, SIGN_UP, "s1", {"email_address": email, "password": password}, **agent).json()
    assert post(live, SIGN_UP, "s2", {"email_address": email, "password": password}).status_code == 400
    access, refresh = user["access_token"], user["refresh_token"]
    post_id = post(live, "/api/v1/posts/add-post", "s3", {"text": text}, **bearer(access)).json()["id"]
    assert get(live, LIST, "s4", **bearer(access)).status_code == 200
    assert get(live, f"{LIST}?token={access}", "s5").status_code == 401
    assert get(live, f"/api/v1/{email}/{access}?password={password}", "s6").status_code == 404
    deleted = requests.delete(
        live.base + DELETE,
        params={"post_id": post_id},
        headers={"X-Request-ID": "s7", **bearer(access)},
        timeout=TIMEOUT,
    )
    assert deleted.status_code == 200
    wrong = {"username": email, "password": "wrong " + password}
    assert (
        requests.post(live.base + SIGN_IN, data=wrong, headers={"X-Request-ID": "s8"}, timeout=TIMEOUT).status_code
        == 401
    )
    assert get(live, REFRESH, "s9", **{"refresh-token": refresh}).status_code == 200
    change = {"current_password": password, "new_password": new_password}
    assert post(live, CHANGE_PASSWORD, "s10", change, **bearer(access)).status_code == 200
    assert post(live, FORGOT_PASSWORD, "s11", {"email_address": email}).status_code == 202
    reset_token = _token_of(smtp_server, 1)
    reset = {"token": reset_token, "new_password": password}
    assert post(live, RESET_PASSWORD, "s12", reset).status_code == 200
    assert post(live, RESET_PASSWORD, "s13", reset).status_code == 400
    signed_in = post(live, SIGN_IN, "s14", {"email_address": email, "password": password}).json()
    headers = {"refresh-token": signed_in["refresh_token"]}
    assert post(live, SIGN_OUT, "s15", {}, **headers).status_code == 200

    spans = collector.wait_for(
        lambda s: all(served(f"s{n}")(s) for n in range(1, 16)) and any(x.name == "mail send" for x in s)
    )
    assert any(s.attributes.get("db.system") == "redis" for s in spans), "no Redis spans"
    secrets = {
        "email": email,
        "email (any case)": email.upper(),
        "password": password,
        "new password": new_password,
        "post text": text,
        "access token": access,
        "refresh token": refresh,
        "reset token": reset_token,
        "new refresh token": signed_in["refresh_token"],
        "post id": post_id,
        "post id (hex)": uuid.UUID(post_id).hex,
        "user id": user["id"],
        "user id (hex)": uuid.UUID(user["id"]).hex,
    }
    payloads = collector.payloads
    for what, secret in secrets.items():
        assert not any(secret.encode() in payload for payload in payloads), f"a span carries the {what}"
    for span in spans:
        assert "http.target" not in span.attributes and "http.user_agent" not in span.attributes, span


def test_a_collector_that_is_down_costs_the_requests_nothing(
    start_server: StartServer, database_url: str, backend: str, start_collector: StartCollector
) -> None:
    if backend != "sqlite":
        pytest.skip("the database plays no part: once is enough")
    down, metrics_port = free_port(), free_port()
    live = start_server(
        database_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{down}",
        OTEL_BSP_SCHEDULE_DELAY="50",
        METRICS_PORT=str(metrics_port),
        METRICS_ADDR="127.0.0.1",
        WEB_CONCURRENCY="1",
    )
    token = sign_up(live.base, "ada@example.com")["access_token"]
    # The exporter retries a refused batch for up to 10 s (sleeping 1, 2, then 4 s): a worker
    # waiting on it would hold a request for seconds within this window.
    slowest = _listings_for(live, token, seconds=8.0)
    assert slowest < REQUEST_BOUND_SECONDS, slowest
    samples = scrape(metrics_port)
    assert value(samples, "posts_api_trace_spans_dropped_total", reason="export_failed") > 0
    assert value(samples, "posts_api_trace_spans_exported_total") == 0

    # The collector comes back where it was: spans flow again.
    back = start_collector(port=down)
    assert get(live, LIST, "after-outage", **bearer(token)).status_code == 200
    back.wait_for(served("after-outage"), timeout=30)


def test_a_slow_collector_costs_the_requests_nothing_and_a_full_queue_is_counted(
    start_server: StartServer, database_url: str, backend: str, start_collector: StartCollector
) -> None:
    if backend != "sqlite":
        pytest.skip("the database plays no part: once is enough")
    slow = start_collector(delay=4.0)
    metrics_port = free_port()
    live = start_server(
        database_url,
        **traced(
            slow,
            OTEL_BSP_SCHEDULE_DELAY="50",
            OTEL_BSP_MAX_QUEUE_SIZE="16",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4",
            METRICS_PORT=str(metrics_port),
            METRICS_ADDR="127.0.0.1",
        ),
    )
    token = sign_up(live.base, "ada@example.com")["access_token"]
    slowest = _listings_for(live, token, seconds=6.0)
    assert slowest < REQUEST_BOUND_SECONDS, slowest
    assert slow.requests >= 1  # an export was held by the collector meanwhile
    samples = scrape(metrics_port)
    assert value(samples, "posts_api_trace_spans_dropped_total", reason="queue_full") > 0
    assert value(samples, "posts_api_trace_spans_dropped_total", reason="export_failed") == 0
    slow.answer_at_once()  # so the shutdown's flush is quick


def _listings_for(live: LiveServer, token: str, seconds: float) -> float:
    """List the posts one request after another for `seconds`; the longest a request took."""
    slowest = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert requests.get(live.base + LIST, headers=bearer(token), timeout=TIMEOUT).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.02)
    return slowest


def test_spans_still_queued_leave_on_hup_and_on_sigterm(
    start_server: StartServer, database_url: str, backend: str, collector: OtlpReceiver
) -> None:
    if backend != "sqlite":
        pytest.skip("the database plays no part: once is enough")
    # Ten minutes between exports: only the flush as a worker exits can send these spans.
    live = start_server(database_url, **traced(collector, OTEL_BSP_SCHEDULE_DELAY="600000"))
    assert get(live, "/healthz", "before-hup").status_code == 200
    time.sleep(1.0)
    assert server_span(collector.spans, "before-hup") is None, "exported before any worker exited"
    (old_worker,) = live.worker_pids()

    live.process.send_signal(signal.SIGHUP)  # new workers start; the old one stops gracefully
    collector.wait_for(served("before-hup"), timeout=40)
    deadline = time.monotonic() + TIMEOUT
    while live.worker_pids() in ([], [old_worker]):
        assert time.monotonic() < deadline, live.log_tail()
        time.sleep(0.1)
    assert get(live, "/healthz", "before-term").status_code == 200

    live.stop()
    assert server_span(collector.spans, "before-term") is not None


def test_a_traceparent_through_nginx_continues_its_trace(
    start_server: StartServer, database_url: str, backend: str, collector: OtlpReceiver, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the database plays no part: once is enough")
    if nginx_path() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; .ci/run must install nginx")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    live = start_server(database_url, **traced(collector))
    nginx = NginxServer(tmp_path / "nginx", [live.port])
    nginx.start()
    try:
        traceparent = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
        headers = {"X-Request-ID": "through-nginx", "traceparent": traceparent}
        assert requests.get(nginx.base + "/healthz", headers=headers, timeout=TIMEOUT).status_code == 200
    finally:
        nginx.stop()
    spans = collector.wait_for(served("through-nginx"))
    span = the_server_span(spans, "through-nginx")
    assert (span.trace_id, span.parent_span_id) == (PARENT_TRACE, PARENT_SPAN)
