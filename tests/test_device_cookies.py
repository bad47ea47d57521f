"""Device cookies: the owner is never locked out by a stranger (docs/api.md "Rate limits", OWASP device cookies).

Every client here keeps no cookies of its own; a test that plays a trusted device sends the
cookie it was given explicitly, so what each request carries is visible in the test.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import delete
from werkzeug.test import TestResponse

from app import create_app
from blueprints.auth.devices import COOKIE_NAME, SALT, DeviceCookie, read_cookie, serializer
from config import ConfigError, Settings, load_settings
from dependencies import account_service
from models.tables import UserRow
from resources import resources
from services.emails import normalize_email
from tests.support.api import (
    CHANGE_PASSWORD,
    DELETE_ACCOUNT,
    PASSWORD,
    RESET_PASSWORD,
    SIGN_IN,
    SIGN_UP,
    MakeClient,
    bearer,
)
from tests.support.redis import RedisServer

WRONG = "wrong password!"
NEW_PASSWORD = "a brand new passphrase"
TOO_MANY = {"error": "Too many attempts, try again later"}
ADA = "ada@example.com"
BOB = "bob@example.com"
DAY = 24 * 60 * 60


def _sign_up(client: FlaskClient, email: str = ADA) -> TestResponse:
    response = client.post(SIGN_UP, json={"email_address": email, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return response


def _sign_in(
    client: FlaskClient, email: str = ADA, password: str = PASSWORD, device: str | None = None, **kwargs: Any
) -> TestResponse:
    headers = {"Cookie": f"{COOKIE_NAME}={device}"} if device is not None else {}
    return client.post(SIGN_IN, json={"email_address": email, "password": password}, headers=headers, **kwargs)


def _set_cookie(response: TestResponse) -> dict[str, str]:
    """The attributes of the device cookie `response` sets (the value under "value"); {} when none."""
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE_NAME:
            value, *attributes = (part.strip() for part in rest.split(";"))
            parsed = {"value": value}
            for attribute in attributes:
                key, _, attribute_value = attribute.partition("=")
                parsed[key.lower()] = attribute_value
            return parsed
    return {}


def _device(response: TestResponse) -> str:
    """The device cookie's value a successful sign-in or sign-up set."""
    assert response.status_code == 200, response.get_json()
    value = _set_cookie(response).get("value")
    assert value, response.headers
    return value


def _assert_too_many(response: TestResponse) -> None:
    assert response.status_code == 429
    assert response.get_json() == TOO_MANY
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60


def _lock_for_strangers(client: FlaskClient, email: str = ADA, failures: int = 5) -> None:
    for _ in range(failures):
        assert _sign_in(client, email, WRONG).status_code == 401
    _assert_too_many(_sign_in(client, email))


def test_a_strangers_failures_do_not_lock_out_the_owners_device(make_client: MakeClient) -> None:
    client = make_client()
    _sign_up(client)
    device = _device(_sign_in(client))
    _lock_for_strangers(client)
    # The owner's device signs in with the right password, and is not charged the stranger's failures ...
    owner = _sign_in(client, device=device)
    assert owner.status_code == 200
    assert owner.get_json()["email_address"] == ADA
    # ... while every client without the cookie is still refused, the right password included.
    _assert_too_many(_sign_in(client))
    _assert_too_many(client.post(SIGN_IN, data={"username": ADA, "password": PASSWORD}))
    # The cookie just set works the same (form sign-in too), again and again.
    device = _device(owner)
    for _ in range(3):
        response = client.post(
            SIGN_IN, data={"username": "Ada@Example.com", "password": PASSWORD}, headers={"Cookie": f"device={device}"}
        )
        device = _device(response)


def test_the_cookie_from_sign_up_makes_a_trusted_device(make_client: MakeClient) -> None:
    client = make_client()
    device = _device(_sign_up(client))
    _lock_for_strangers(client)
    assert _sign_in(client, device=device).status_code == 200


def test_a_device_has_its_own_failure_limit(make_client: MakeClient) -> None:
    client = make_client(rate_limit_device_sign_in_failures="3 per 15 minutes")
    _sign_up(client)
    device = _device(_sign_in(client))
    other_device = _device(_sign_in(client))
    for _ in range(3):
        response = _sign_in(client, password=WRONG, device=device)
        assert response.status_code == 401
        assert response.get_json() == {"error": "Incorrect email or password"}
        assert _set_cookie(response) == {}
    # That device is locked out, even with the right password ...
    _assert_too_many(_sign_in(client, device=device))
    _assert_too_many(_sign_in(client, password=WRONG, device=device))
    # ... and only that device: another device of the owner, and clients without a cookie (the
    # account's counter was never charged), still sign in.
    assert _sign_in(client, device=other_device).status_code == 200
    assert _sign_in(client).status_code == 200


def test_the_device_limit_and_the_account_limit_are_separate_settings(make_client: MakeClient) -> None:
    client = make_client(
        rate_limit_sign_in_failures="1 per 15 minutes", rate_limit_device_sign_in_failures="4 per 10 minutes"
    )
    _sign_up(client)
    device = _device(_sign_in(client))
    assert _sign_in(client, password=WRONG).status_code == 401
    _assert_too_many(_sign_in(client))
    for _ in range(4):
        assert _sign_in(client, password=WRONG, device=device).status_code == 401
    _assert_too_many(_sign_in(client, device=device))


def test_a_success_starts_the_devices_count_afresh_but_not_the_old_cookies(make_client: MakeClient) -> None:
    client = make_client(rate_limit_device_sign_in_failures="2 per 15 minutes")
    _sign_up(client)
    first = _device(_sign_in(client))
    assert _sign_in(client, password=WRONG, device=first).status_code == 401
    # The right password proves the failure was the owner's: the new cookie has a new count ...
    second = _device(_sign_in(client, device=first))
    assert second != first
    assert _sign_in(client, password=WRONG, device=second).status_code == 401
    third = _device(_sign_in(client, device=second))
    # ... while a copy of the old cookie keeps its own: one more failure locks it, and only it.
    assert _sign_in(client, password=WRONG, device=first).status_code == 401
    _assert_too_many(_sign_in(client, device=first))
    assert _sign_in(client, device=third).status_code == 200


def test_a_stranger_with_no_cookie_cannot_use_the_owners_device_limit(make_client: MakeClient) -> None:
    # The per-account limit is untouched by trusted devices, and vice versa: a stranger's failures
    # never reach the device's count, whatever their number.
    client = make_client(rate_limit_device_sign_in_failures="1 per 15 minutes")
    _sign_up(client)
    device = _device(_sign_in(client))
    _lock_for_strangers(client)
    for _ in range(3):
        _assert_too_many(_sign_in(client, password=WRONG))
    assert _sign_in(client, device=device).status_code == 200


class _PastSigner(TimestampSigner):
    """Signs as if it were two lifetimes ago (itsdangerous's public timestamp hook)."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 90 * DAY


def _account(app: Flask, email: str) -> tuple[str, str]:
    with app.app_context():
        found = account_service().password_version_by_email(normalize_email(email))
    assert found is not None
    return found[0].hex, found[1]


def _cookie_for(app: Flask, content: Any, *, secret: str | None = None, salt: str = SALT, past: bool = False) -> str:
    signer = URLSafeTimedSerializer(
        secret or app.config["JWT_SECRET_KEY"], salt=salt, signer=_PastSigner if past else TimestampSigner
    )
    value: str = signer.dumps(content)
    return value


def _invalid_cookies(app: Flask, genuine: str, bobs: str) -> dict[str, str]:
    ada_id, ada_version = _account(app, ADA)
    bob_id, _ = _account(app, BOB)
    payload, timestamp, signature = genuine.rsplit(".", 2)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    nonce = "n" * 22
    return {
        "garbage": "not-a-device-cookie",
        "empty": "",
        "signature flipped": f"{payload}.{timestamp}.{flipped}",
        "payload changed": f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{timestamp}.{signature}",
        "no signature": f"{payload}.{timestamp}",
        "non-ascii": genuine[:-1] + "\N{LATIN SMALL LETTER E WITH ACUTE}",
        "too long": genuine + "A" * 300,
        "expired": _cookie_for(app, [ada_id, ada_version, nonce], past=True),
        "another account's": bobs,
        "another account's id, this password": _cookie_for(app, [bob_id, ada_version, nonce]),
        "an old password's": _cookie_for(app, [ada_id, "0" * 16, nonce]),
        "not a list": _cookie_for(app, {"account": ada_id}),
        "signed with another secret": _cookie_for(
            app, [ada_id, ada_version, nonce], secret="another-signing-key-that-is-at-least-32-bytes"
        ),
        "signed for another purpose": _cookie_for(app, [ada_id, ada_version, nonce], salt="itsdangerous"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "empty",
        "signature flipped",
        "payload changed",
        "no signature",
        "non-ascii",
        "too long",
        "expired",
        "another account's",
        "another account's id, this password",
        "an old password's",
        "not a list",
        "signed with another secret",
        "signed for another purpose",
    ],
)
def test_an_invalid_cookie_counts_as_none(make_client: MakeClient, kind: str) -> None:
    client = make_client(rate_limit_sign_in_failures="2 per 15 minutes")
    _sign_up(client, BOB)
    bobs = _device(_sign_in(client, BOB))
    _sign_up(client)
    invalid = _invalid_cookies(client.application, _device(_sign_in(client)), bobs)[kind]
    # Its failures count against the account like any cookie-less client's ...
    assert _sign_in(client, password=WRONG, device=invalid).status_code == 401
    assert _sign_in(client, password=WRONG).status_code == 401
    # ... and it does not get past the account's lock.
    _assert_too_many(_sign_in(client, device=invalid))


def test_a_valid_cookie_made_the_same_way_is_accepted(make_client: MakeClient) -> None:
    # The negative cases above differ from this one only in the property under test.
    client = make_client(rate_limit_sign_in_failures="1 per 15 minutes")
    _sign_up(client)
    made = _cookie_for(client.application, [*_account(client.application, ADA), "n" * 22])
    _lock_for_strangers(client, failures=1)
    assert _sign_in(client, device=made).status_code == 200
    assert (
        client.post(
            SIGN_IN,
            json={"email_address": "ADA@example.com", "password": PASSWORD},
            headers={"Cookie": f"{COOKIE_NAME}={made}"},
        ).status_code
        == 200
    )


def test_a_cookie_of_a_deleted_account_is_ignored_when_the_address_signs_up_again(make_client: MakeClient) -> None:
    # A squatter collects cookies for the address, deletes the account and leaves it to the owner.
    client = make_client(rate_limit_sign_in_failures="3 per 15 minutes")
    squatter = _sign_up(client)
    cookie = _device(squatter)
    token = squatter.get_json()["access_token"]
    deleted = client.delete(DELETE_ACCOUNT, json={"password": PASSWORD}, headers=bearer(token))
    assert deleted.status_code == 200, deleted.get_json()
    _sign_up(client)  # the owner
    # The squatter's guesses count against the owner's account like a stranger's, and hit its limit.
    for _ in range(3):
        assert _sign_in(client, password=WRONG, device=cookie).status_code == 401
    _assert_too_many(_sign_in(client, password=WRONG, device=cookie))


def test_a_cookie_from_before_a_password_change_counts_as_a_stranger(make_client: MakeClient) -> None:
    client = make_client(rate_limit_sign_in_failures="2 per 15 minutes")
    signed_up = _sign_up(client)
    old_device = _device(signed_up)
    changed = client.post(
        CHANGE_PASSWORD,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(signed_up.get_json()["access_token"]),
    )
    assert changed.status_code == 200, changed.get_json()
    new_device = _device(changed)  # the client that changed it stays trusted
    # The old device's guesses reach the account's limit ...
    for _ in range(2):
        assert _sign_in(client, password=WRONG, device=old_device).status_code == 401
    _assert_too_many(_sign_in(client, password=NEW_PASSWORD, device=old_device))
    _assert_too_many(_sign_in(client, password=NEW_PASSWORD))
    # ... and the new cookie is the owner's way in.
    assert _sign_in(client, password=NEW_PASSWORD, device=new_device).status_code == 200


def test_a_rotated_signing_key_invalidates_every_device_cookie(make_client: MakeClient) -> None:
    client = make_client(rate_limit_sign_in_failures="1 per 15 minutes")
    _sign_up(client)
    device = _device(_sign_in(client))
    client.application.config["JWT_SECRET_KEY"] = "a-rotated-signing-key-that-is-at-least-32-bytes"
    _lock_for_strangers(client, failures=1)
    _assert_too_many(_sign_in(client, device=device))


def test_read_cookie_accepts_only_its_own_unexpired_cookies() -> None:
    signer, other = serializer("k" * 32), serializer("o" * 32)
    cookie = signer.dumps(["acct", "version", "nonce"])
    assert read_cookie(signer, cookie, timedelta(days=1)) == DeviceCookie("acct", "version", "nonce")
    assert read_cookie(other, cookie, timedelta(days=1)) is None
    assert read_cookie(signer, signer.dumps(["acct", "version"]), timedelta(days=1)) is None
    assert read_cookie(signer, signer.dumps(["acct", "version", 7]), timedelta(days=1)) is None
    past = URLSafeTimedSerializer("k" * 32, salt=SALT, signer=_PastSigner).dumps(["acct", "version", "nonce"])
    assert read_cookie(signer, past, timedelta(days=90)) is None
    assert read_cookie(signer, past, timedelta(days=181)) is not None


def test_cookie_attributes_over_http(make_client: MakeClient) -> None:
    client = make_client()
    for response in (_sign_up(client), _sign_in(client)):
        cookie = _set_cookie(response)
        assert set(cookie) == {"value", "expires", "max-age", "httponly", "samesite", "path"}, cookie
        assert cookie["path"] == "/api/v1/auth"
        assert cookie["samesite"] == "Strict"
        assert int(cookie["max-age"]) == 90 * DAY
        # No email in it, only the account id, a password version and the nonce.
        # (Not "ada" alone: the random part is base64 and once spelled it.)
        assert not any(form in cookie["value"] for form in ("ada@example.com", "ada%40example.com", "example.com"))
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("hops", "kwargs", "secure"),
    [
        (0, {"base_url": "https://api.example.com"}, True),
        (0, {"headers": {"X-Forwarded-Proto": "https"}}, False),
        (1, {"headers": {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}}, True),
        (1, {"headers": {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"}}, False),
    ],
)
def test_cookie_is_secure_only_over_https(
    make_client: MakeClient, hops: int, kwargs: dict[str, Any], secure: bool
) -> None:
    client = make_client(trusted_proxy_hops=hops)
    _sign_up(client)
    response = client.post(SIGN_IN, json={"email_address": ADA, "password": PASSWORD}, **kwargs)
    cookie = _set_cookie(response)
    assert ("secure" in cookie) is secure, cookie
    assert cookie["path"] == "/api/v1/auth" and cookie["samesite"] == "Strict" and "httponly" in cookie


def test_the_lifetime_is_a_setting(make_client: MakeClient) -> None:
    client = make_client(device_cookie_days=7)
    cookie = _set_cookie(_sign_up(client))
    assert int(cookie["max-age"]) == 7 * DAY
    # The signature's own age check enforces it: a cookie signed 8 days ago is refused.
    assert read_cookie(serializer(client.application.config["JWT_SECRET_KEY"]), cookie["value"], timedelta(days=7))


def test_no_cookie_on_failure_or_elsewhere(make_client: MakeClient) -> None:
    client = make_client()
    _sign_up(client)
    assert _set_cookie(client.post(SIGN_UP, json={"email_address": ADA, "password": PASSWORD})) == {}
    assert _set_cookie(_sign_in(client, password=WRONG)) == {}
    assert _set_cookie(client.post(SIGN_IN, json={"email_address": ADA})) == {}
    assert _set_cookie(client.get("/")) == {}


def test_a_browser_like_client_sends_it_back_by_itself(settings: Settings) -> None:
    # Flask's test client keeps cookies like a browser (path included): nothing but a sign-in is needed.
    app = create_app(load_settings({}, **{**settings.model_dump(), "rate_limit_sign_in_failures": "1 per 15 minutes"}))
    try:
        browser = app.test_client()
        stranger = app.test_client(use_cookies=False)
        _sign_up(browser)
        assert browser.get_cookie(COOKIE_NAME, path="/api/v1/auth") is not None
        assert browser.get_cookie(COOKIE_NAME) is None
        _lock_for_strangers(stranger, failures=1)
        assert _sign_in(browser).status_code == 200
    finally:
        with resources(app).engine.begin() as connection:
            connection.execute(delete(UserRow))
        resources(app).engine.dispose()


def test_with_rate_limits_off_the_cookie_is_still_set_and_nothing_is_refused(make_client: MakeClient) -> None:
    client = make_client(rate_limits_enabled=False)
    device = _device(_sign_up(client))
    for _ in range(7):
        assert _sign_in(client, password=WRONG, device=device).status_code == 401
    assert _sign_in(client, device=device).status_code == 200


def test_device_counters_in_redis_are_keyed_by_nonce_and_shared(
    make_client: MakeClient, redis_server: RedisServer
) -> None:
    shared = {"redis_url": redis_server.url, "rate_limit_device_sign_in_failures": "2 per 15 minutes"}
    client = make_client(**shared)
    _sign_up(client)
    device = _device(_sign_in(client))
    for _ in range(2):
        assert _sign_in(client, password=WRONG, device=device).status_code == 401
    with client.application.app_context():
        content = read_cookie(serializer(client.application.config["JWT_SECRET_KEY"]), device, timedelta(days=1))
    assert content is not None
    nonce = content.nonce
    keys = [key.decode() if isinstance(key, bytes) else key for key in redis_server.client().keys("*posts-api-limits*")]
    assert [key for key in keys if nonce in key], keys
    assert not [key for key in keys if "ada" in key or "example" in key]
    # Another app (another worker or host) with the same Redis sees the device locked.
    _assert_too_many(_sign_in(make_client(**shared), device=device))


def test_openapi_documents_the_cookie(make_client: MakeClient) -> None:
    spec = make_client().get("/openapi.json").get_json()
    sign_in = spec["paths"][SIGN_IN]["post"]
    assert {"in": "cookie", "name": COOKIE_NAME} in [{"in": p["in"], "name": p["name"]} for p in sign_in["parameters"]]
    for path in (SIGN_IN, SIGN_UP, CHANGE_PASSWORD, RESET_PASSWORD):
        assert "Set-Cookie" in spec["paths"][path]["post"]["responses"]["200"]["headers"], path


def test_settings_are_read_from_the_environment() -> None:
    env = {"RATE_LIMIT_DEVICE_SIGN_IN_FAILURES": "10 per hour", "DEVICE_COOKIE_DAYS": "30"}
    settings = load_settings(env, jwt_secret_key="x" * 32)
    assert (settings.rate_limit_device_sign_in_failures, settings.device_cookie_days) == ("10 per hour", 30)
    defaults = load_settings({}, jwt_secret_key="x" * 32)
    assert (defaults.rate_limit_device_sign_in_failures, defaults.device_cookie_days) == ("5 per 15 minutes", 90)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_DEVICE_SIGN_IN_FAILURES", "0 per minute"),
        ("RATE_LIMIT_DEVICE_SIGN_IN_FAILURES", "garbage"),
        ("DEVICE_COOKIE_DAYS", "0"),
        ("DEVICE_COOKIE_DAYS", "401"),
        ("DEVICE_COOKIE_DAYS", "ninety"),
    ],
)
def test_bad_settings_refuse_to_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, jwt_secret_key="x" * 32)
