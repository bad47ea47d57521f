"""Concurrent sign-ups with one email, spread over gunicorn workers and threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.e2e.helpers import CLOSE, TIMEOUT
from tests.support.api import PASSWORD, SIGN_IN, SIGN_UP
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

CONTENDERS = 12


def test_concurrent_duplicate_sign_up_creates_one_account(live_server: LiveServer) -> None:
    emails = ["Same@Example.com" if i % 2 else "same@example.com" for i in range(CONTENDERS)]
    emails[3] = "SAME@EXAMPLE.COM"
    barrier = threading.Barrier(CONTENDERS)
    results: list[tuple[int, Any, str] | BaseException] = [ValueError("not run")] * CONTENDERS

    def contend(index: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            response = requests.post(
                live_server.base + SIGN_UP,
                json={"email_address": emails[index], "password": PASSWORD},
                headers=CLOSE,
                timeout=TIMEOUT,
            )
            content_type = response.headers.get("Content-Type", "")
            results[index] = (response.status_code, response.json(), content_type)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)

    failures = [result for result in results if isinstance(result, BaseException)]
    assert not failures, failures
    answers = [result for result in results if not isinstance(result, BaseException)]
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] + [400] * (CONTENDERS - 1), (answers, live_server.log_tail())
    for status, body, content_type in answers:
        assert content_type == "application/json"
        if status == 400:
            assert body == {"error": "Email already exists"}
        else:
            assert body["email_address"] == "same@example.com"
    assert "Traceback" not in live_server.log(), live_server.log_tail()

    # The one account works with any casing of the email.
    response = requests.post(
        live_server.base + SIGN_IN,
        json={"email_address": "sAmE@eXaMpLe.CoM", "password": PASSWORD},
        headers=CLOSE,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    winner = next(body for status, body, _ in answers if status == 200)
    assert response.json()["id"] == winner["id"]
