"""The throwaway Redis server the multi-host tests rely on."""

from __future__ import annotations

import pytest
import redis

from tests.support.redis import RedisServer


def test_redis_server_stops_and_restarts_on_the_same_port(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    assert client.get("k") == b"v"
    port = redis_server.port
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        redis_server.client().ping()
    redis_server.start()
    assert redis_server.port == port
    assert redis_server.client().ping()
    assert redis_server.client().get("k") is None  # nothing persisted
