"""What each hot request costs the database, counted by MariaDB itself: the minimum, and nothing more.

A cached-miss listing is one SELECT and the ROLLBACK that ends its snapshot; add-post and
delete_my_post are their statement and a COMMIT (in a transaction, so a write the client was
refused is never committed later by a thawed server); a cached listing is nothing. No ping on a
connection in use (a connection is pinged only after sitting idle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pymysql
import pytest
from flask.testing import FlaskClient

from tests.support.api import ADD, DELETE, LIST, SignUp, bearer
from tests.support.mariadb import MariaDBServer

COUNTERS = ("Com_select", "Com_insert", "Com_delete", "Com_commit", "Com_rollback", "Com_admin_commands")

Costs = Callable[[Callable[[], object]], dict[str, int]]


@pytest.fixture
def costs(backend: str, request: pytest.FixtureRequest) -> Iterator[Costs]:
    """Measure: the server-wide statement counters a call moved (this test is the server's only client)."""
    if backend != "mariadb":
        pytest.skip("counted with MariaDB's status counters")
    server: MariaDBServer = request.getfixturevalue("mariadb_server")
    root = pymysql.connect(host="127.0.0.1", port=server.port, user="root", password="", autocommit=True)

    def counters() -> dict[str, int]:
        with root.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN %s", (COUNTERS,))
            return {name: int(value) for name, value in cursor.fetchall()}

    def measure(call: Callable[[], object]) -> dict[str, int]:
        before = counters()
        call()
        after = counters()
        return {name: after[name] - before[name] for name in COUNTERS if after[name] != before[name]}

    yield measure
    root.close()


def test_each_hot_request_costs_the_minimum(client: FlaskClient, sign_up: SignUp, costs: Costs) -> None:
    token = sign_up()["access_token"]
    headers = bearer(token)
    post_ids: list[str] = []

    def add() -> None:
        response = client.post(ADD, json={"text": "hello"}, headers=headers)
        assert response.status_code == 200
        post_ids.append(response.get_json()["id"])

    def listing() -> None:
        response = client.get(LIST, headers=headers)
        assert response.status_code == 200
        assert [post["id"] for post in response.get_json()] == post_ids[-1:]  # the body read, so the response closed

    def delete() -> None:
        assert client.delete(DELETE, query_string={"post_id": post_ids[0]}, headers=headers).status_code == 200

    assert costs(add) == {"Com_insert": 1, "Com_commit": 1}
    assert costs(listing) == {"Com_select": 1, "Com_rollback": 1}  # the miss, ending its snapshot
    assert costs(listing) == {}  # the hit
    assert costs(delete) == {"Com_delete": 1, "Com_commit": 1}
