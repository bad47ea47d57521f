"""The Redis listing cache under outages: fall back to the database, recover, never hide a write."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from flask import Flask

from app import create_app
from cache.listing import VersionedListingCache
from config import Settings, load_settings
from resources import resources
from tests.support.api import TEST_SECRET, Api, SignUp
from tests.support.redis import RedisServer

RETRY_SECONDS = 0.1
RECOVERY_DEADLINE = 15.0  # generous: only reached when the behaviour is wrong


def _redis_settings(schema_url: str, redis_url: str, retry_seconds: float = RETRY_SECONDS) -> Settings:
    return load_settings(
        {},
        app_env="testing",
        database_url=schema_url,
        jwt_secret_key=TEST_SECRET,
        redis_url=redis_url,
        cache_retry_seconds=retry_seconds,
        redis_timeout_seconds=0.5,
        # Flask-Limiter is one object per process: with limits on, it would count in this Redis,
        # find it stopped, and stay on its memory fallback into later tests' apps (losing counts
        # when it notices the storage is back), which broke the lockout tests that ran next.
        rate_limits_enabled=False,
    )


@pytest.fixture
def settings(schema_url: str, redis_server: RedisServer) -> Settings:
    """This module's apps keep their listing cache in the throwaway Redis."""
    return _redis_settings(schema_url, redis_server.url)


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {RECOVERY_DEADLINE}s: {what}"
        time.sleep(RETRY_SECONDS)


def _version(server: RedisServer, user_id: str) -> bytes | str | None:
    """The user's listing version stamp in Redis (bodies stay in each process)."""
    return server.client().get(f"posts-api:v:{user_id}")


def test_listing_falls_back_to_the_database_while_redis_is_down_and_uses_it_again_after(
    api: Api, sign_up: SignUp, redis_server: RedisServer, statements: list[str]
) -> None:
    user = sign_up("ada@example.com")
    token = user["access_token"]
    api.add_post(token, "one")
    assert api.texts(token) == ["one"]
    assert _version(redis_server, user["id"])

    redis_server.stop()
    statements.clear()
    assert api.texts(token) == ["one"]
    assert "SELECT" in statements  # served by the database
    api.add_post(token, "two")  # a write during the outage succeeds ...
    assert api.texts(token) == ["two", "one"]  # ... and is read back

    redis_server.start()  # empty: this server keeps nothing on disk
    _eventually(lambda: api.texts(token) == ["two", "one"] and bool(_version(redis_server, user["id"])),
                "listing versioned in Redis again")  # fmt: skip
    statements.clear()
    assert api.texts(token) == ["two", "one"]
    assert statements == []  # a cache hit again


def test_a_write_during_an_outage_is_not_hidden_when_redis_comes_back_with_old_data(
    schema_url: str, persistent_redis: RedisServer, app: Flask
) -> None:
    # `app` only empties the shared tables afterwards.
    # Two "hosts" on one database and one Redis: A takes the write, B serves the reads.
    host_a = create_app(_redis_settings(schema_url, persistent_redis.url))
    host_b = create_app(_redis_settings(schema_url, persistent_redis.url))
    a, b = Api(host_a.test_client()), Api(host_b.test_client())
    try:
        user = a.user(password="x" * 12)
        token, user_id = user["access_token"], user["id"]
        a.add_post(token, "one")
        assert b.texts(token) == ["one"]  # B keeps the body under the version in Redis
        stale = _version(persistent_redis, user_id)
        assert stale

        persistent_redis.stop()
        a.add_post(token, "two")  # committed; the invalidation cannot reach Redis
        cache_a: VersionedListingCache = resources(host_a).listing
        assert cache_a.is_pending(uuid.UUID(user_id))
        assert a.texts(token) == ["two", "one"]

        persistent_redis.start()
        # Redis is back with the pre-write version, under which B keeps ["one"]: without the
        # deferred invalidation, B would serve it for up to CACHE_TIMEOUT_SECONDS.
        assert _version(persistent_redis, user_id) == stale
        _eventually(lambda: not cache_a.is_pending(uuid.UUID(user_id)), "deferred invalidation reached Redis")
        assert b.texts(token) == ["two", "one"]
        assert a.texts(token) == ["two", "one"]
    finally:
        for host in (host_a, host_b):
            resources(host).engine.dispose()


def test_a_write_invalidates_at_once_even_while_its_breaker_is_open(
    schema_url: str, redis_server: RedisServer, app: Flask
) -> None:
    # `app` only empties the shared tables afterwards. Host A's breaker stays open for a minute
    # after its first failure; host B never saw the outage.
    host_a = create_app(_redis_settings(schema_url, redis_server.url, retry_seconds=60))
    host_b = create_app(_redis_settings(schema_url, redis_server.url))
    a, b = Api(host_a.test_client()), Api(host_b.test_client())
    try:
        token = a.user(password="x" * 12)["access_token"]
        a.add_post(token, "one")
        redis_server.stop()
        assert a.texts(token) == ["one"]  # fails over to the database: A's breaker opens
        redis_server.start()
        assert b.texts(token) == ["one"]  # B versions the listing in the fresh Redis and keeps its body
        a.add_post(token, "two")  # A's breaker is still open, but the invalidation goes through
        assert b.texts(token) == ["two", "one"]
    finally:
        for host in (host_a, host_b):
            resources(host).engine.dispose()
