"""/metrics through a real gunicorn with three workers: the master's scrape sums every worker,
including one that has since exited."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import CLOSE, TIMEOUT, WORKERS, StartServer, access_log, log_records, sign_up
from tests.support.api import LIST, SIGN_IN, bearer
from tests.support.gunicorn import LiveServer
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

SPREAD_SECONDS = 60.0
MAX_ROUNDS = 100


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the master serves, keyed by (name, labels)."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when it does not exist."""
    return samples.get((name, frozenset(labels.items())), 0.0)


PROBE = "/no-such-page"


def probe_pids(server: LiveServer) -> list[int]:
    """The worker pid of each access line of PROBE so far.

    A path of its own (a 404): start_gunicorn's readiness check asks for `/`, and a health probe
    that succeeds is logged at DEBUG only.
    """
    return [pid for pid, _, path, _ in access_log(server.log()) if path == PROBE]


def test_the_masters_scrape_sums_every_worker(start_server: StartServer, database_url: str) -> None:
    metrics_port = free_port()
    # One connection per worker at a time, so concurrent requests spread over the workers.
    server = start_server(
        database_url,
        METRICS_PORT=str(metrics_port),
        METRICS_ADDR="127.0.0.1",
        GUNICORN_THREADS="1",
        GUNICORN_CMD_ARGS="--worker-connections 1",
        RATE_LIMIT_SIGN_IN_FAILURES="1 per 15 minutes",
    )
    base = server.base

    def probe(_: int) -> int:
        return requests.get(base + PROBE, headers=CLOSE, timeout=TIMEOUT).status_code

    sent = 0
    deadline = time.monotonic() + SPREAD_SECONDS
    for _ in range(MAX_ROUNDS):
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            assert list(pool.map(probe, range(2 * WORKERS))) == [404] * (2 * WORKERS)
        sent += 2 * WORKERS
        if len(set(probe_pids(server))) == WORKERS or time.monotonic() > deadline:
            break
    # The access line follows the response; wait for the last ones (the counters are already in).
    while len(probe_pids(server)) < sent and time.monotonic() < deadline + TIMEOUT:
        time.sleep(0.05)
    served_by = probe_pids(server)
    assert len(served_by) == sent and len(set(served_by)) == WORKERS, served_by

    samples = scrape(metrics_port)
    labels = {"method": "GET", "endpoint": "unmatched", "status": "404"}
    assert value(samples, "posts_api_http_requests_total", **labels) == sent
    assert value(samples, "posts_api_http_request_duration_seconds_count", **labels) == sent
    assert value(samples, "posts_api_db_pool_connections_in_use") == 0

    # The listing cache (shared by the workers through the filesystem): one miss, then hits.
    token = sign_up(base, "metrics@example.com")["access_token"]
    for _ in range(3):
        assert requests.get(base + LIST, headers=bearer(token), timeout=TIMEOUT).status_code == 200
    # Rate-limit refusals: each worker counts failed sign-ins itself (no Redis here) and allows
    # one, so four failures make at least one 429.
    wrong = {"email_address": "metrics@example.com", "password": "wrong password"}
    statuses = [
        requests.post(base + SIGN_IN, json=wrong, headers=CLOSE, timeout=TIMEOUT).status_code
        for _ in range(WORKERS + 1)
    ]
    assert set(statuses) <= {401, 429} and 429 in statuses

    samples = scrape(metrics_port)
    assert value(samples, "posts_api_listing_cache_requests_total", result="miss") == 1
    assert value(samples, "posts_api_listing_cache_requests_total", result="hit") == 2
    assert value(samples, "posts_api_rate_limit_refusals_total", endpoint=SIGN_IN) == statuses.count(429)
    sign_in_429 = {"method": "POST", "endpoint": SIGN_IN, "status": "429"}
    assert value(samples, "posts_api_http_requests_total", **sign_in_429) == statuses.count(429)

    # A worker exits (gunicorn starts another): what it counted still counts.
    os.kill(served_by[0], signal.SIGTERM)
    while sum(str(r["message"]).startswith("Booting worker") for r in log_records(server.log())) <= WORKERS:
        assert time.monotonic() < deadline + 2 * TIMEOUT, server.log_tail()
        time.sleep(0.1)
    samples = scrape(metrics_port)
    assert value(samples, "posts_api_http_requests_total", **labels) == sent
    assert value(samples, "posts_api_db_pool_connections_in_use") == 0
