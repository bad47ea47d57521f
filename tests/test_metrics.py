"""Metrics in process: what each request, cache lookup and pool checkout adds to the counters.

The values live in prometheus_client's default registry for the whole test process, so every
test compares before and after. Serving them across gunicorn workers is tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from cachelib import RedisCache, SimpleCache
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from app import create_app
from cache.listing import VersionedListingCache
from config import Settings, load_settings
from observability.db_pool import MeteredQueuePool
from resources import resources
from tests.support.api import LIST, PASSWORD, SIGN_IN, Api, MakeClient, bearer
from tests.support.net import free_port

WAIT_LIMIT = 30.0  # bounds a wait for another thread; never a timing assertion

MakeApp = Callable[..., Flask]


def sample(name: str, **labels: str) -> float:
    """The current value of one sample (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_total(method: str, endpoint: str, status: int) -> float:
    """posts_api_http_requests_total for one label set."""
    return sample("posts_api_http_requests_total", method=method, endpoint=endpoint, status=str(status))


@pytest.fixture
def make_app(make_client: MakeClient) -> MakeApp:
    """Factory: an app built with setting overrides (conftest's make_client), metrics on unless told."""

    def make(**overrides: Any) -> Flask:
        overrides.setdefault("metrics_port", 9999)  # never bound in process: only gunicorn serves metrics
        application: Flask = make_client(**overrides).application
        return application

    return make


def test_requests_are_counted_by_route_rule_method_and_status(make_app: MakeApp) -> None:
    client = make_app().test_client()
    before = {
        "list_401": requests_total("GET", LIST, 401),
        "unmatched": requests_total("GET", "unmatched", 404),
        "other": requests_total("other", "unmatched", 405),
        "latency": sample("posts_api_http_request_duration_seconds_count", method="GET", endpoint=LIST, status="401"),
    }
    assert client.get(LIST).status_code == 401
    assert client.get(LIST).status_code == 401
    assert client.get(f"/nowhere/{uuid.uuid4()}").status_code == 404
    assert client.open(LIST, method="BREW").status_code == 405

    assert requests_total("GET", LIST, 401) == before["list_401"] + 2
    assert requests_total("GET", "unmatched", 404) == before["unmatched"] + 1
    assert requests_total("other", "unmatched", 405) == before["other"] + 1
    count = sample("posts_api_http_request_duration_seconds_count", method="GET", endpoint=LIST, status="401")
    assert count == before["latency"] + 2
    # A raw path never becomes a label value: the cardinality stays bounded.
    endpoints = {
        s.labels["endpoint"]
        for metric in REGISTRY.collect()
        if metric.name == "posts_api_http_requests"
        for s in metric.samples
    }
    assert not any(endpoint.startswith("/nowhere") for endpoint in endpoints)


def test_nothing_is_counted_per_request_when_metrics_are_off(make_app: MakeApp) -> None:
    app = make_app(metrics_port=None)
    before = requests_total("GET", LIST, 401)
    assert app.test_client().get(LIST).status_code == 401
    assert requests_total("GET", LIST, 401) == before


def test_rate_limit_refusals_are_counted_by_route(make_app: MakeApp) -> None:
    client = make_app(rate_limit_sign_in_failures="1 per 15 minutes").test_client(use_cookies=False)
    email = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    Api(client).user(email)
    before = sample("posts_api_rate_limit_refusals_total", endpoint=SIGN_IN)
    attempt = {"email_address": email, "password": "wrong password!"}
    assert client.post(SIGN_IN, json=attempt).status_code == 401
    assert client.post(SIGN_IN, json=attempt).status_code == 429
    assert client.post(SIGN_IN, json=attempt).status_code == 429
    assert sample("posts_api_rate_limit_refusals_total", endpoint=SIGN_IN) == before + 2


def test_503s_are_counted_by_cause(settings: Settings) -> None:
    # Nothing listens on port 1: every connection is refused, as when the database is down.
    down = load_settings(
        {},
        **{**settings.model_dump(), **{"metrics_port": 9999, "database_url": "mysql+pymysql://u:p@127.0.0.1:1/posts"}},
    )
    app = create_app(down)
    client = app.test_client()
    before = {
        cause: sample("posts_api_unavailable_responses_total", cause=cause) for cause in ("database", "not_ready")
    }
    response = client.post(SIGN_IN, json={"email_address": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").status_code == 503
    assert sample("posts_api_unavailable_responses_total", cause="database") == before["database"] + 1
    assert sample("posts_api_unavailable_responses_total", cause="not_ready") == before["not_ready"] + 2
    resources(app).engine.dispose()


def test_pool_connections_in_use(make_app: MakeApp) -> None:
    app = make_app()
    before = sample("posts_api_db_pool_connections_in_use")
    with resources(app).engine.connect() as first, resources(app).engine.connect() as second:
        first.execute(text("SELECT 1"))
        second.execute(text("SELECT 1"))
        assert sample("posts_api_db_pool_connections_in_use") == before + 2
    assert sample("posts_api_db_pool_connections_in_use") == before


def test_listing_lookups_count_misses_and_hits(make_app: MakeApp) -> None:
    client = make_app(metrics_port=None).test_client()  # counted whether metrics are served or not
    token = Api(client).user(f"cached-{uuid.uuid4().hex[:8]}@example.com")["access_token"]
    before = {result: sample("posts_api_listing_cache_requests_total", result=result) for result in ("hit", "miss")}
    for _ in range(3):
        assert client.get(LIST, headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/posts/add-post", json={"text": "hi"}, headers=bearer(token)).status_code == 200
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    assert sample("posts_api_listing_cache_requests_total", result="miss") == before["miss"] + 2
    assert sample("posts_api_listing_cache_requests_total", result="hit") == before["hit"] + 2


def test_an_unreachable_cache_is_bypassed_and_counted() -> None:
    # A real Redis client on a port nothing listens on: every call fails at once.
    backend = RedisCache(host="127.0.0.1", port=free_port(), default_timeout=300)
    listing = VersionedListingCache(cast(Any, backend), 300, 1024, max_bytes=4096, retry_seconds=60)
    before = sample("posts_api_listing_cache_requests_total", result="bypass")
    assert listing.get(uuid.uuid4()) == ("", None)  # the failed read
    assert listing.get(uuid.uuid4()) == ("", None)  # the breaker is open: skipped
    assert sample("posts_api_listing_cache_requests_total", result="bypass") == before + 2


def test_a_lookup_is_a_miss_then_a_hit() -> None:
    listing = VersionedListingCache(cast(Any, SimpleCache()), 300, 1024, max_bytes=4096)
    user_id = uuid.uuid4()
    before = {result: sample("posts_api_listing_cache_requests_total", result=result) for result in ("hit", "miss")}
    version, body = listing.get(user_id)
    assert body is None
    listing.put(user_id, version, b"[]")
    assert listing.get(user_id) == (version, b"[]")
    assert sample("posts_api_listing_cache_requests_total", result="miss") == before["miss"] + 1
    assert sample("posts_api_listing_cache_requests_total", result="hit") == before["hit"] + 1


def test_a_checkout_that_waits_for_a_connection_is_counted(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", poolclass=MeteredQueuePool, pool_size=1, max_overflow=0, pool_timeout=60
    )
    waits, waited = sample("posts_api_db_pool_waits_total"), sample("posts_api_db_pool_wait_seconds_total")
    with engine.connect() as idle_checkout:
        idle_checkout.execute(text("SELECT 1"))
    assert sample("posts_api_db_pool_waits_total") == waits  # a connection was free: no wait

    done = threading.Event()

    def second_checkout() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        done.set()

    holder = engine.connect()
    other = threading.Thread(target=second_checkout)
    other.start()
    # The wait is counted as it starts; the other thread stays blocked until the holder lets go.
    deadline = time.monotonic() + WAIT_LIMIT
    while sample("posts_api_db_pool_waits_total") == waits and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sample("posts_api_db_pool_waits_total") == waits + 1
    assert not done.is_set()
    holder.close()
    other.join(WAIT_LIMIT)
    assert done.is_set()
    assert sample("posts_api_db_pool_wait_seconds_total") > waited

    # The engine's pool survives a dispose() (SQLAlchemy rebuilds it with recreate()).
    engine.dispose()
    assert isinstance(engine.pool, MeteredQueuePool) and engine.pool.overflow_limit == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
