"""The audit log and request ids: one JSON line per event, no secrets, the id echoed on every response."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from blueprints.audit import event_name
from config import Settings, load_settings
from models.tables import UserRow
from resources import resources
from tests.support.api import ADD, LIST, PASSWORD, REFRESH, SIGN_IN, SIGN_OUT, SIGN_UP, bearer

EMAIL = "ada.lovelace@example.com"
WRONG = "not-the-password-42"
POST_TEXT = "my secret diary entry \N{GRINNING FACE} 7f3a"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual test settings, logging JSON as in production."""
    return load_settings({}, **{**settings.model_dump(), **{"log_format": "json"}})


def audit_lines(text: str) -> list[dict[str, Any]]:
    """The audit records among captured output lines (every line a whole JSON object)."""
    records = [json.loads(line) for line in text.splitlines()]
    return [record for record in records if record["logger"] == "posts.audit"]


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    """Which of `secrets` (or a JWT's signature or payload segment) occur in `text`."""
    pieces = []
    for secret in secrets:
        pieces.append(secret)
        if secret.startswith("eyJ"):  # a JWT: its payload or signature alone would leak it too
            pieces.extend(secret.split(".")[1:])
    return [piece for piece in pieces if piece in text]


def test_every_event_is_one_json_line_without_secrets(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("unexpected")

    ids: dict[str, str] = {}

    def call(name: str, method: str, path: str, **kwargs: Any) -> Any:
        response = client.open(
            path, method=method, headers={"X-Request-ID": f"req-{name}", **kwargs.pop("headers", {})}, **kwargs
        )
        assert response.headers["X-Request-ID"] == f"req-{name}"
        ids[name] = f"req-{name}"
        return response

    user = call("sign_up", "POST", SIGN_UP, json={"email_address": EMAIL, "password": PASSWORD}).get_json()
    assert call("dup", "POST", SIGN_UP, json={"email_address": EMAIL, "password": PASSWORD}).status_code == 400
    assert call("wrong", "POST", SIGN_IN, json={"email_address": EMAIL, "password": WRONG}).status_code == 401
    signed_in = call("sign_in", "POST", SIGN_IN, data={"username": EMAIL, "password": PASSWORD}).get_json()
    assert call("refresh", "GET", REFRESH, headers={"refresh-token": user["refresh_token"]}).status_code == 200
    assert call("add", "POST", ADD, json={"text": POST_TEXT, "token": signed_in["access_token"]}).status_code == 200
    assert call("list", "GET", LIST, headers=bearer(signed_in["access_token"])).status_code == 200
    forged = signed_in["access_token"][:-4] + "AAAA"
    assert call("bad_token", "GET", LIST, headers=bearer(forged)).status_code == 401
    assert call("sign_out", "POST", SIGN_OUT, headers={"refresh-token": signed_in["refresh_token"]}).status_code == 200
    assert call("revoked", "GET", REFRESH, headers={"refresh-token": signed_in["refresh_token"]}).status_code == 401
    assert call("boom", "GET", "/boom").status_code == 500
    # A user deleted behind the service's back: the insert breaks the foreign key, which is a 401.
    fresh = call("sign_in_again", "POST", SIGN_IN, data={"username": EMAIL, "password": PASSWORD}).get_json()
    with resources(app).engine.begin() as connection:
        connection.execute(delete(UserRow))
    orphan = call("orphan", "POST", ADD, json={"text": POST_TEXT}, headers=bearer(fresh["access_token"]))
    assert orphan.status_code == 401

    output = capsys.readouterr()
    records = audit_lines(output.err)
    events = {record["request_id"]: record for record in records}
    expected = {
        "sign_up": ("sign_up", 200),
        "dup": ("sign_up_failed", 400),
        "wrong": ("sign_in_failed", 401),
        "sign_in": ("sign_in", 200),
        "refresh": ("refresh", 200),
        "bad_token": ("authorization_failed", 401),
        "sign_out": ("sign_out", 200),
        "revoked": ("refresh_failed", 401),
        "boom": ("server_error", 500),
        "orphan": ("authorization_failed", 401),
    }
    for name, (event, status) in expected.items():
        record = events[ids[name]]
        assert (record["event"], record["status"]) == (event, status), name
        assert record["client"] == "127.0.0.1"
    # Successful post traffic is not an audit event.
    assert ids["add"] not in events and ids["list"] not in events
    assert events[ids["sign_in"]]["user_id"] == user["id"]
    assert events[ids["wrong"]]["account"] == events[ids["sign_in"]]["account"]
    assert events[ids["revoked"]]["reason"] == "Token has been revoked"
    assert events[ids["boom"]]["error"] == "RuntimeError"
    assert events[ids["orphan"]]["reason"] == "User no longer exists"

    everything = output.out + output.err + caplog.text
    tokens = [
        user["access_token"],
        user["refresh_token"],
        signed_in["access_token"],
        signed_in["refresh_token"],
        forged,
    ]
    assert secrets_in(everything, [PASSWORD, WRONG, POST_TEXT, "secret diary", EMAIL, *tokens]) == []


@pytest.mark.parametrize("offered", ["abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "Root=1-5759e988:bd86/x+y=="])
def test_a_sane_request_id_is_echoed_on_success_and_errors(client: FlaskClient, offered: str) -> None:
    for method, path in [("GET", "/"), ("GET", "/nowhere"), ("GET", LIST), ("DELETE", SIGN_UP)]:
        response = client.open(path, method=method, headers={"X-Request-ID": offered})
        assert response.headers["X-Request-ID"] == offered, path


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "has space", "semi;colon", 'quote"', "é"])
def test_a_missing_or_odd_request_id_is_replaced(client: FlaskClient, offered: str | None) -> None:
    headers = {} if offered is None else {"X-Request-ID": offered}
    first = client.get(LIST, headers=headers).headers["X-Request-ID"]
    second = client.get(LIST, headers=headers).headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second)
    assert first != second


def test_request_id_on_a_body_too_large_and_a_429(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    big = client.post(
        ADD, data=b"x" * (1024 * 1024 + 1), content_type="application/json", headers={"X-Request-ID": "big"}
    )
    assert (big.status_code, big.headers["X-Request-ID"]) == (413, "big")
    for attempt in range(6):
        last = client.post(
            SIGN_IN, json={"email_address": EMAIL, "password": WRONG}, headers={"X-Request-ID": f"try-{attempt}"}
        )
    assert (last.status_code, last.headers["X-Request-ID"]) == (429, "try-5")
    records = {record["request_id"]: record for record in audit_lines(capsys.readouterr().err)}
    assert (records["try-5"]["event"], records["try-5"]["status"]) == ("sign_in_failed", 429)
    assert records["try-5"]["reason"] == "Too many attempts, try again later"
    assert "big" not in records  # a 413 is not an audit event


@pytest.mark.parametrize(
    ("endpoint", "status", "event"),
    [
        ("auth.sign_in", 429, "sign_in_failed"),
        ("auth.sign_out", 401, "sign_out_failed"),
        ("posts.delete_my_post", 403, "authorization_failed"),
        ("posts.add_post", 429, "rate_limited"),
        ("posts.get_my_posts", 503, "server_error"),
        (None, 500, "server_error"),
        ("posts.get_my_posts", 200, None),
        (None, 404, None),
        ("posts.add_post", 413, None),
    ],
)
def test_event_names(endpoint: str | None, status: int, event: str | None) -> None:
    assert event_name(endpoint, status) == event


def test_audit_lines_stay_one_line_for_hostile_paths(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    response = client.get("/api/v1/posts/get_my_posts%0A%7B%22event%22:%22forged%22%7D", headers={"X-Request-ID": "hp"})
    assert response.status_code == 404
    client.get(LIST, headers={"X-Request-ID": "hostile", **bearer(str(uuid.uuid4()))})
    assert [record["event"] for record in audit_lines(capsys.readouterr().err)] == ["authorization_failed"]
