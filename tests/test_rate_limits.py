"""Rate limits on sign-up and sign-in: failed sign-ins per account, attempts per client address.

Every client here keeps no cookies, so none is a trusted device (tests/test_device_cookies.py):
these are the limits as every client without a device cookie meets them.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from app import create_app
from blueprints.auth.limits import outside_limited_blueprints
from config import ConfigError, Settings, load_settings
from tests.support.api import LIST, PASSWORD, SIGN_IN, SIGN_UP, Api, MakeClient
from tests.support.redis import RedisServer

WRONG = "wrong password!"
TOO_MANY = {"error": "Too many attempts, try again later"}


def _assert_too_many(response: Any, longest_wait: int) -> None:
    assert response.status_code == 429
    assert response.get_json() == TOO_MANY
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert 1 <= int(response.headers["Retry-After"]) <= longest_wait


def test_five_failures_lock_the_account_even_for_the_right_password(make_client: MakeClient) -> None:
    api = Api(make_client())
    assert api.sign_up().status_code == 200
    for _ in range(5):
        assert api.sign_in(password=WRONG).status_code == 401
    _assert_too_many(api.sign_in(), 15 * 60)
    _assert_too_many(api.sign_in(password=WRONG), 15 * 60)
    # Form sign-in (Swagger UI's Authorize) names the same account.
    _assert_too_many(api.sign_in(form=True), 15 * 60)


def test_only_failures_count(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="2 per 15 minutes"))
    assert api.sign_up().status_code == 200
    for _ in range(4):
        assert api.sign_in().status_code == 200
    assert api.sign_in(password=WRONG).status_code == 401
    assert api.sign_in().status_code == 200
    assert api.sign_in(password=WRONG).status_code == 401
    _assert_too_many(api.sign_in(), 15 * 60)


def test_case_and_form_variants_of_an_email_share_one_counter(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="3 per 15 minutes"))
    assert api.sign_up().status_code == 200
    assert api.sign_in("ADA@example.com", WRONG).status_code == 401
    assert api.sign_in("Ada@Example.Com", WRONG, form=True).status_code == 401
    assert api.client.post(SIGN_IN, json={"email": " ada@example.com", "password": WRONG}).status_code == 401
    _assert_too_many(api.sign_in(), 15 * 60)


def test_unknown_emails_are_limited_exactly_like_known_ones(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="2 per 15 minutes"))
    assert api.sign_up().status_code == 200
    answers = {}
    for email in ("ada@example.com", "nobody@example.com"):
        first = [api.sign_in(email, WRONG) for _ in range(3)]
        answers[email] = [(r.status_code, r.get_json(), sorted(name for name, _ in r.headers)) for r in first]
    assert answers["ada@example.com"] == answers["nobody@example.com"]
    assert [status for status, _, _ in answers["nobody@example.com"]] == [401, 401, 429]


def test_a_locked_account_does_not_lock_others(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="1 per 15 minutes"))
    assert api.sign_up().status_code == 200
    assert api.sign_up("bob@example.com").status_code == 200
    assert api.sign_in(password=WRONG).status_code == 401
    assert api.sign_in().status_code == 429
    assert api.sign_in("bob@example.com").status_code == 200


def test_invalid_requests_do_not_count_as_failures(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_sign_in_failures="1 per 15 minutes"))
    assert api.sign_up().status_code == 200
    for _ in range(3):
        assert api.client.post(SIGN_IN, json={"email_address": "ada@example.com"}).status_code == 422
        assert api.client.post(SIGN_IN, data=b"{", content_type="application/json").status_code == 422
    assert api.sign_in().status_code == 200


def test_sign_up_and_sign_in_share_a_limit_per_client_address(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_auth_per_address="3 per minute"))
    here: dict[str, Any] = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
    assert api.sign_up(**here).status_code == 200
    assert api.sign_in(**here).status_code == 200
    assert api.sign_in(password=WRONG, **here).status_code == 401
    _assert_too_many(api.sign_up("bob@example.com", **here), 60)
    _assert_too_many(api.sign_in(**here), 60)
    # Another address has its own budget; other endpoints are not limited.
    assert api.sign_in(environ_base={"REMOTE_ADDR": "198.51.100.8"}).status_code == 200
    assert api.client.get("/", **here).status_code == 200


def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_auth_per_address="2 per minute"))
    for octet in (1, 2):
        assert api.sign_in(headers={"X-Forwarded-For": f"203.0.113.{octet}"}).status_code == 401
    assert api.sign_in(headers={"X-Forwarded-For": "203.0.113.3"}).status_code == 429


def test_trusted_proxy_hops_key_the_limit_on_the_forwarded_address(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_auth_per_address="2 per minute", trusted_proxy_hops=1))
    # The client can prepend anything; only the hop the trusted proxy appended counts.
    spoofed = {"X-Forwarded-For": "10.9.9.9, 203.0.113.1"}
    for _ in range(2):
        assert api.sign_in(headers=spoofed).status_code == 401
    assert api.sign_in(headers={"X-Forwarded-For": "10.8.8.8, 203.0.113.1"}).status_code == 429
    assert api.sign_in(headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 401


def test_rate_limits_can_be_switched_off(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limits_enabled=False, rate_limit_auth_per_address="1 per minute"))
    assert api.sign_up().status_code == 200
    for _ in range(7):
        assert api.sign_in(password=WRONG).status_code == 401
    assert api.sign_in().status_code == 200


def test_openapi_documents_429_on_sign_up_and_sign_in(make_client: MakeClient) -> None:
    spec = make_client().get("/openapi.json").get_json()
    for path in (SIGN_UP, SIGN_IN):
        assert "429" in spec["paths"][path]["post"]["responses"], path
    too_many = spec["components"]["responses"]["TOO_MANY_REQUESTS"]["content"]["application/json"]["schema"]
    assert too_many["$ref"].endswith("/Error")


def test_limits_are_read_from_the_environment() -> None:
    env = {
        "RATE_LIMITS_ENABLED": "false",
        "RATE_LIMIT_SIGN_IN_FAILURES": "10 per hour",
        "RATE_LIMIT_AUTH_PER_ADDRESS": "1000/minute",
        "TRUSTED_PROXY_HOPS": "2",
    }
    settings = load_settings(env, jwt_secret_key="x" * 32)
    assert settings.rate_limits_enabled is False
    assert settings.rate_limit_sign_in_failures == "10 per hour"
    assert settings.rate_limit_auth_per_address == "1000/minute"
    assert settings.trusted_proxy_hops == 2
    defaults = load_settings({}, jwt_secret_key="x" * 32)
    assert (defaults.rate_limit_sign_in_failures, defaults.rate_limit_auth_per_address) == (
        "5 per 15 minutes",
        "120 per minute",
    )


@pytest.mark.parametrize("value", ["garbage", "", "5 per fortnight", "0 per minute", "-1 per minute", "five/minute"])
@pytest.mark.parametrize("name", ["RATE_LIMIT_SIGN_IN_FAILURES", "RATE_LIMIT_AUTH_PER_ADDRESS"])
def test_unparseable_limits_refuse_to_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, jwt_secret_key="x" * 32)


def test_negative_proxy_hops_refuse_to_start() -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        load_settings({"TRUSTED_PROXY_HOPS": "-1"}, jwt_secret_key="x" * 32)


def test_counters_live_in_redis_and_never_name_the_email(make_client: MakeClient, redis_server: RedisServer) -> None:
    shared = {"redis_url": redis_server.url, "rate_limit_sign_in_failures": "2 per 15 minutes"}
    api = Api(make_client(**shared))
    assert api.sign_up().status_code == 200
    for _ in range(2):
        assert api.sign_in(password=WRONG).status_code == 401
    keys = [key.decode() if isinstance(key, bytes) else key for key in redis_server.client().keys("*posts-api-limits*")]
    assert keys, "the limiter wrote nothing to Redis"
    assert not [key for key in keys if "ada" in key or "example" in key]
    _assert_too_many(api.sign_in(), 15 * 60)
    # Counters in Redis survive the app: a new app (another worker or host) sees them.
    _assert_too_many(Api(make_client(**shared)).sign_in(), 15 * 60)


def _outage_answers(settings: dict[str, Any]) -> list[int]:
    """In a fresh process: sign up, stop Redis, then four sign-ins (right, wrong, wrong, right); their statuses."""
    api = Api(create_app(load_settings({}, **settings)).test_client(use_cookies=False))
    assert api.sign_up().status_code == 200
    redis.Redis.from_url(settings["redis_url"]).shutdown(nosave=True)
    return [api.sign_in(password=password).status_code for password in (PASSWORD, WRONG, WRONG, PASSWORD)]


def test_a_redis_outage_falls_back_to_per_process_limits(
    make_client: MakeClient, settings: Settings, redis_server: RedisServer
) -> None:
    # Flask-Limiter keeps one storage and its fallback state per Limiter, and the app's limiter is
    # one object per process with no public reset; so the outage happens in a process of its own,
    # and no app of a later test inherits the fallback (or its counts).
    make_client()  # its teardown empties the tables the other process writes
    overrides = {"redis_url": redis_server.url, "rate_limit_sign_in_failures": "2 per 15 minutes"}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        answers = pool.submit(_outage_answers, {**settings.model_dump(), **overrides}).result(timeout=120)
    redis_server.stop()  # reap the server the other process shut down; the fixture restarts it
    # Sign-in keeps working without Redis, and is still limited, by that process's own counters.
    assert answers == [200, 401, 401, 429]


def test_the_limiter_runs_only_on_the_auth_blueprint(make_client: MakeClient) -> None:
    api = Api(make_client(rate_limit_auth_per_address="2 per minute"))
    app: Flask = api.client.application
    # A request filter exempts every other blueprint, so a cache hit pays nothing for limits.
    with app.test_request_context(LIST):
        assert outside_limited_blueprints()
    with app.test_request_context(SIGN_UP, method="POST"):
        assert not outside_limited_blueprints()
    for _ in range(5):
        assert api.client.get("/").status_code == 200
    assert [api.sign_up(f"u{i}@example.com").status_code for i in range(3)] == [200, 200, 429]


def test_the_per_address_limit_covers_exactly_the_endpoints_the_docs_name(make_client: MakeClient) -> None:
    """Issue 27: .env.example and docker-compose.yml said "sign-ups and sign-ins"; it covers six endpoints."""
    api = Api(make_client(rate_limit_auth_per_address="1 per minute"))
    body = api.user()  # the address's one attempt this minute
    limited = {
        "sign_in": api.sign_in(),
        "refresh_token": api.refresh(body["refresh_token"]),
        "sign_out": api.sign_out(body["refresh_token"]),
        "forgot_password": api.forgot_password(),
        "reset_password": api.reset_password("some-token", "a brand new passphrase"),
    }
    for name, response in limited.items():
        assert response.status_code == 429, (name, response.get_json())
    # The endpoints that take an access token count toward the failed sign-ins instead.
    changed = api.change_password(body["access_token"], PASSWORD, "a brand new passphrase")
    assert changed.status_code == 200, changed.get_json()
    assert api.delete_account(changed.get_json()["access_token"], "a brand new passphrase").status_code == 200
    root = Path(__file__).resolve().parents[1]
    for path in (".env.example", "docker-compose.yml", "docs/operations.md"):
        [line] = [line for line in (root / path).read_text().splitlines() if "RATE_LIMIT_AUTH_PER_ADDRESS" in line]
        described = line.lower()
        for words in ("sign-ups", "sign-ins", "refreshes", "sign-outs", "reset"):
            assert words in described, (path, words, line)
