"""Sessions end exactly: tokens issued by requests racing an ending are refused once it has answered.

Real concurrency against gunicorn on MariaDB: clients signing in with the old password while the
owner changes it, clients refreshing one refresh token while it signs out, clients adding posts
with one access token while it signs out. Every token they got
must be refused one second (the contract's propagation) after the ending answered, whatever the
order the database saw. And an ending holds when the cache cannot write at all (a full CACHE_DIR).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import CLOSE, TIMEOUT, StartServer, sign_up
from tests.support.api import ADD, CHANGE_PASSWORD, LIST, PASSWORD, REFRESH, SIGN_IN, SIGN_OUT, bearer
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a brand new passphrase"
PROPAGATION_SECONDS = 1.0
# Bounds: each racing client stops at its first refusal, after MAX_TOKENS tokens in all, or after RACE_SECONDS.
RACE_SECONDS = 10.0
MAX_TOKENS = 2000
# The per-address auth limit would stop the racing clients long before the race.
NO_ADDRESS_LIMIT = {"RATE_LIMIT_AUTH_PER_ADDRESS": "100000 per minute"}


@pytest.fixture
def mariadb_url(backend: str, database_url: str) -> str:
    """A fresh MariaDB database: the races are about a shared server's transactions."""
    if backend != "mariadb":
        pytest.skip("races are tested on MariaDB")
    return database_url


def _race(clients: int, attempt: Callable[[], dict[str, Any] | None], end: Callable[[], None]) -> list[dict[str, Any]]:
    """Run `attempt` in `clients` threads until each is refused (None), and `end` once they are under way.

    Returns every successful attempt's body (the tokens it got).
    """
    got: list[dict[str, Any]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + RACE_SECONDS
    started = threading.Barrier(clients + 1)

    def client() -> None:
        started.wait(timeout=TIMEOUT)
        while time.monotonic() < deadline:
            body = attempt()
            if body is None:
                return
            with lock:
                got.append(body)
                if len(got) >= MAX_TOKENS:
                    return

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started.wait(timeout=TIMEOUT)
    time.sleep(0.3)  # every client is mid-request now
    end()
    for thread in threads:
        thread.join(timeout=RACE_SECONDS + TIMEOUT)
        assert not thread.is_alive()
    return got


def _accepted(server: LiveServer, access_token: str) -> bool:
    response = requests.get(server.base + LIST, headers={**bearer(access_token), **CLOSE}, timeout=TIMEOUT)
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def _refreshes(server: LiveServer, refresh_token: str) -> bool:
    response = requests.get(server.base + REFRESH, headers={"refresh-token": refresh_token, **CLOSE}, timeout=TIMEOUT)
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def test_sign_ins_racing_a_password_change_keep_no_session(start_server: StartServer, mariadb_url: str) -> None:
    live = start_server(mariadb_url, **NO_ADDRESS_LIMIT)
    owner = sign_up(live.base, "race@example.com")
    answered: list[float] = []

    def sign_in() -> dict[str, Any] | None:
        response = requests.post(
            live.base + SIGN_IN,
            json={"email_address": "race@example.com", "password": PASSWORD},
            headers=CLOSE,
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            return None  # the old password no longer works (or the account's failure limit)
        return {**response.json(), "answered_at": time.monotonic()}

    def change_password() -> None:
        response = requests.post(
            live.base + CHANGE_PASSWORD,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={**bearer(owner["access_token"]), **CLOSE},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        answered.append(time.monotonic())

    issued = _race(3, sign_in, change_password)
    time.sleep(PROPAGATION_SECONDS)
    late = [tokens for tokens in issued if tokens["answered_at"] > answered[0]]  # answered after the change
    survivors = [
        tokens
        for tokens in issued
        if _refreshes(live, tokens["refresh_token"]) or _accepted(live, tokens["access_token"])
    ]
    print(f"old-password sign-ins: {len(issued)}, answered after the change: {len(late)}, kept: {len(survivors)}")
    assert issued, "no sign-in succeeded before the change: no race"
    assert survivors == []


def test_refreshes_racing_a_sign_out_mint_no_lasting_token(start_server: StartServer, mariadb_url: str) -> None:
    live = start_server(mariadb_url, **NO_ADDRESS_LIMIT)
    user = sign_up(live.base, "refresh@example.com")
    refresh_token = user["refresh_token"]

    def refresh() -> dict[str, Any] | None:
        response = requests.get(live.base + REFRESH, headers={"refresh-token": refresh_token}, timeout=TIMEOUT)
        return response.json() if response.status_code == 200 else None

    def sign_out() -> None:
        response = requests.post(
            live.base + SIGN_OUT, headers={"refresh-token": refresh_token, **CLOSE}, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text

    minted = _race(4, refresh, sign_out)
    time.sleep(PROPAGATION_SECONDS)
    survivors = [tokens for tokens in minted if _accepted(live, tokens["access_token"])]
    print(f"access tokens minted while signing out: {len(minted)}, still accepted: {len(survivors)}")
    assert minted, "no refresh succeeded before the sign-out: no race"
    assert survivors == []


def test_add_posts_racing_a_sign_out_store_exactly_what_was_acknowledged(
    start_server: StartServer, mariadb_url: str
) -> None:
    """add-post checks the session in its own statement: after the sign-out, no write lands beyond the window."""
    live = start_server(mariadb_url)
    user = sign_up(live.base, "writer@example.com")
    signed_out_at: list[float] = []

    def add() -> dict[str, Any] | None:
        sent_at = time.monotonic()
        response = requests.post(
            live.base + ADD, json={"text": "racing"}, headers=bearer(user["access_token"]), timeout=TIMEOUT
        )
        assert response.status_code in (200, 401), (response.status_code, response.text)
        return {"id": response.json()["id"], "sent_at": sent_at} if response.status_code == 200 else None

    def sign_out() -> None:
        response = requests.post(
            live.base + SIGN_OUT, headers={"refresh-token": user["refresh_token"], **CLOSE}, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        signed_out_at.append(time.monotonic())

    acknowledged = _race(4, add, sign_out)
    late = [post for post in acknowledged if post["sent_at"] > signed_out_at[0] + PROPAGATION_SECONDS]
    signed_in = requests.post(
        live.base + SIGN_IN,
        json={"email_address": "writer@example.com", "password": PASSWORD},
        headers=CLOSE,
        timeout=TIMEOUT,
    )
    assert signed_in.status_code == 200, signed_in.text
    listing = requests.get(live.base + LIST, headers=bearer(signed_in.json()["access_token"]), timeout=TIMEOUT)
    assert listing.status_code == 200, listing.text
    stored = {post["id"] for post in listing.json()}
    print(f"posts acknowledged while signing out: {len(acknowledged)}, sent over a second after it: {len(late)}")
    assert acknowledged, "no add-post succeeded before the sign-out: no race"
    assert late == []
    assert stored == {post["id"] for post in acknowledged}  # none lost, none stored unacknowledged


@pytest.fixture
def full_cache_dir(tmp_path: Path) -> Iterator[Path]:
    """A CACHE_DIR on a 1 MiB tmpfs (root only), for the test to fill."""
    mount_point = tmp_path / "full-cache"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode(errors='replace')}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_sign_out_ends_the_access_tokens_when_the_cache_cannot_write(
    start_server: StartServer, mariadb_url: str, full_cache_dir: Path
) -> None:
    live = start_server(mariadb_url, CACHE_DIR=str(full_cache_dir))
    user = sign_up(live.base, "full@example.com")
    assert _accepted(live, user["access_token"])
    with (full_cache_dir / "filler").open("wb") as filler:  # the disk is full from here on
        try:
            while True:
                filler.write(b"x" * 65536)
                filler.flush()
        except OSError:
            pass
    response = requests.post(
        live.base + SIGN_OUT, headers={"refresh-token": user["refresh_token"], **CLOSE}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    time.sleep(PROPAGATION_SECONDS)
    # Every worker refuses both tokens (each request opens its own connection: any worker may answer it).
    assert [_accepted(live, user["access_token"]) for _ in range(12)] == [False] * 12
    assert not _refreshes(live, user["refresh_token"])
