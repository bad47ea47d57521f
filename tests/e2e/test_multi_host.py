"""Several hosts on one MariaDB and one Redis: two gunicorn instances (3 workers each) behind no proxy.

Read-your-writes must hold across instances, and a Redis outage must cost neither errors nor
stale listings: reads fall back to the database, the cache comes back with Redis, and a write
whose invalidation could not reach Redis is not hidden by a Redis that returns with old data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from tests.e2e.helpers import (
    CLOSE,
    TIMEOUT,
    StartServer,
    access_log,
    add_post,
    delete_post,
    list_posts,
    sign_up,
)
from tests.support.gunicorn import LiveServer
from tests.support.redis import RedisServer

pytestmark = pytest.mark.e2e

ROUNDS = 12
RECOVERY_SECONDS = 20.0  # generous: reached only when recovery is broken
# With the default CACHE_RETRY_SECONDS=2, deferred invalidations land about 2 s after Redis is back.
STALE_BOUND_SECONDS = 10.0


def _two_instances(start_server: StartServer, database_url: str, redis_url: str, **env: str) -> list[LiveServer]:
    first = start_server(database_url, REDIS_URL=redis_url, **env)
    second = start_server(database_url, create_tables=False, REDIS_URL=redis_url, **env)
    return [first, second]


def _ids(base: str, token: str) -> list[str]:
    return [post["id"] for post in list_posts(base, token)]


def _eventually(condition: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds}s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def _cache_keys(redis: RedisServer, kind: str) -> list[bytes]:
    return list(redis.client().scan_iter(f"posts-api:{kind}:*"))


def _cache_values(redis: RedisServer, kind: str) -> dict[bytes, object]:
    client = redis.client()
    return {key: client.get(key) for key in client.scan_iter(f"posts-api:{kind}:*")}


def _assert_clean_logs(*servers: LiveServer) -> None:
    for server in servers:
        log = server.log()
        assert "WORKER TIMEOUT" not in log and "unhandled error" not in log, server.log_tail()
        # /readyz answers 503 on purpose while Redis is down; nothing else may.
        assert all(status < 500 for _, _, path, status in access_log(log) if path != "/readyz"), server.log_tail()


def test_a_write_through_one_instance_is_read_at_once_through_the_other(
    shared_database: str, redis_server: RedisServer, start_server: StartServer
) -> None:
    hosts = _two_instances(start_server, shared_database, redis_server.url)
    ada = sign_up(hosts[0].base, "ada@example.com")["access_token"]
    bob = sign_up(hosts[1].base, "bob@example.com")["access_token"]

    expected: list[str] = []
    for round_no in range(ROUNDS):
        writer, reader = hosts[round_no % 2], hosts[(round_no + 1) % 2]
        # Warm the reader's view first, so a missed invalidation would show as a stale hit.
        assert _ids(reader.base, ada) == expected
        expected.insert(0, add_post(writer.base, ada, f"post {round_no}"))
        assert _ids(reader.base, ada) == expected, f"round {round_no}: add on {writer.port} not seen on {reader.port}"
        assert _ids(writer.base, ada) == expected
        if round_no % 3 == 2:
            victim = expected.pop(1)
            delete_post(reader.base, ada, victim)
            assert _ids(writer.base, ada) == expected, f"round {round_no}: delete not seen across instances"
        assert list_posts(reader.base, bob) == []

    # The listings really were cached in the shared Redis, and both instances took writes and reads.
    assert _cache_keys(redis_server, "v") and _cache_keys(redis_server, "l")
    for host in hosts:
        methods = {method for _, method, path, _ in access_log(host.log()) if path.startswith("/api/v1/posts/")}
        assert methods == {"GET", "POST", "DELETE"}, host.log_tail()
    _assert_clean_logs(*hosts)


def test_redis_outage_falls_back_to_the_database_and_recovers(
    shared_database: str, redis_server: RedisServer, start_server: StartServer
) -> None:
    first, second = _two_instances(start_server, shared_database, redis_server.url)
    token = sign_up(first.base, "ada@example.com")["access_token"]
    expected = [add_post(first.base, token, "before")]
    assert _ids(second.base, token) == expected

    redis_server.stop()
    timings: list[float] = []
    for round_no in range(4):  # writes and reads on both instances, every answer correct
        writer, reader = (first, second) if round_no % 2 else (second, first)
        expected.insert(0, add_post(writer.base, token, f"during {round_no}"))
        for host in (reader, writer):
            started = time.monotonic()
            assert _ids(host.base, token) == expected
            timings.append(time.monotonic() - started)
    median, worst = sorted(timings)[len(timings) // 2], max(timings)
    print(f"listing with Redis stopped: median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms")
    ready = requests.get(first.base + "/readyz", headers=CLOSE, timeout=TIMEOUT)
    assert ready.status_code == 503 and ready.json()["checks"] == {
        "database": "ok",
        "schema": "ok",
        "redis": "unavailable",
    }

    redis_server.start()  # empty (no persistence), same port; gunicorn is not restarted
    _eventually(
        lambda: _ids(second.base, token) == expected and bool(_cache_keys(redis_server, "l")),
        RECOVERY_SECONDS,
        "listings cached in Redis again",
    )
    expected.insert(0, add_post(second.base, token, "after"))
    for host in (first, second, first, second):
        assert _ids(host.base, token) == expected
    assert requests.get(second.base + "/readyz", headers=CLOSE, timeout=TIMEOUT).status_code == 200
    _assert_clean_logs(first, second)


def test_a_write_during_an_outage_is_not_hidden_when_redis_returns_with_old_data(
    shared_database: str, persistent_redis: RedisServer, start_server: StartServer
) -> None:
    first, second = _two_instances(start_server, shared_database, persistent_redis.url)
    token = sign_up(first.base, "ada@example.com")["access_token"]
    before = add_post(first.base, token, "before")
    for _ in range(4):  # cached on the shared Redis, whichever worker answers
        assert _ids(second.base, token) == [before]
    stale = _cache_keys(persistent_redis, "l")
    assert stale

    versions = _cache_values(persistent_redis, "v")
    persistent_redis.stop()
    during = add_post(first.base, token, "during")  # stored; its invalidation cannot reach Redis
    assert _ids(second.base, token) == [during, before]  # read from the database meanwhile

    persistent_redis.start()
    assert _cache_keys(persistent_redis, "l") == stale  # the pre-write listing is back in Redis
    assert _cache_values(persistent_redis, "v") == versions  # and so is the version that points at it
    # Reads alone cannot tell when the window ends: workers whose breaker is still open read the
    # database and look fresh while others serve the stale listing. The version stamp can.
    waited = _eventually(
        lambda: _cache_values(persistent_redis, "v") != versions,
        STALE_BOUND_SECONDS,
        "the deferred invalidation retired the stale listing's version",
    )
    print(f"stale window after Redis returned: {waited:.1f}s")
    for host in (first, second, first, second):
        assert _ids(host.base, token) == [during, before]
    assert any("deferred invalidations done" in host.log() for host in (first, second))
    _assert_clean_logs(first, second)


# Each gunicorn worker pays at most one Redis timeout (1 s) per breaker cool-down; without the
# breaker every request would pay one. 9 listings over 3 workers: about 3 s with, 9 s without.
FROZEN_LISTINGS = 9
FROZEN_BOUND_SECONDS = 6.0


def test_a_frozen_redis_costs_each_worker_one_timeout_not_every_request(
    shared_database: str, redis_server: RedisServer, start_server: StartServer
) -> None:
    live = start_server(shared_database, REDIS_URL=redis_server.url, CACHE_RETRY_SECONDS="60")
    token = sign_up(live.base, "ada@example.com")["access_token"]
    first = add_post(live.base, token, "first")
    assert _ids(live.base, token) == [first]

    redis_server.freeze()  # accepts connections, never answers: every call waits for its timeout
    try:
        started = time.monotonic()
        for _ in range(FROZEN_LISTINGS):
            assert _ids(live.base, token) == [first]
        elapsed = time.monotonic() - started
        probe_started = time.monotonic()
        ready = requests.get(live.base + "/readyz", headers=CLOSE, timeout=TIMEOUT)
        probe_elapsed = time.monotonic() - probe_started
    finally:
        redis_server.thaw()
    print(f"{FROZEN_LISTINGS} listings with Redis frozen: {elapsed:.2f}s; /readyz: {probe_elapsed:.2f}s")
    assert elapsed < FROZEN_BOUND_SECONDS, f"{FROZEN_LISTINGS} listings took {elapsed:.1f}s"
    assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
    assert probe_elapsed < 5.0
    _assert_clean_logs(live)
