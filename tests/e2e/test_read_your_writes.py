"""Read-your-writes of the listing cache across gunicorn workers, and per-user isolation."""

from __future__ import annotations

import itertools

import pytest

from tests.e2e.helpers import WORKERS, access_log, add_post, delete_post, list_posts, sign_up
from tests.support.api import LIST
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

ROUNDS = 30
# The kernel decides which worker accepts each connection; once every request has landed on
# one worker. More rounds (bounded) until some write was followed by another worker's read.
MAX_ROUNDS = 150


def test_each_write_shows_in_the_next_listing_on_any_worker(live_server: LiveServer) -> None:
    base = live_server.base
    ada = sign_up(base, "ada@example.com")["access_token"]
    bob = sign_up(base, "bob@example.com")["access_token"]
    assert list_posts(base, ada) == []
    assert list_posts(base, bob) == []

    expected: list[str] = []  # ada's post ids, newest first
    texts: dict[str, str] = {}
    rounds = 0
    while rounds < ROUNDS or (not _cross_worker(live_server) and rounds < MAX_ROUNDS):
        round_no = rounds
        rounds += 1
        text = f"post {round_no}"
        post_id = add_post(base, ada, text)
        expected.insert(0, post_id)
        texts[post_id] = text
        listing = list_posts(base, ada)
        assert [post["id"] for post in listing] == expected, f"stale listing after add in round {round_no}"
        assert listing[0]["text"] == text
        # A second read, on a fresh connection again, is served from the now-warm cache.
        assert [post["id"] for post in list_posts(base, ada)] == expected

        if round_no % 3 == 2:
            victim = expected.pop(1)
            delete_post(base, ada, victim)
            listing = list_posts(base, ada)
            assert [post["id"] for post in listing] == expected, f"deleted post still listed in round {round_no}"
            assert victim not in {post["id"] for post in listing}

        assert list_posts(base, bob) == [], "bob was served ada's posts"

    assert len(expected) == rounds - rounds // 3
    assert [post["text"] for post in list_posts(base, ada)] == [texts[post_id] for post_id in expected]
    # Bob's own post is his alone, and ada's listing is unchanged by it.
    bobs = add_post(base, bob, "bob's only post")
    assert [post["id"] for post in list_posts(base, bob)] == [bobs]
    assert [post["id"] for post in list_posts(base, ada)] == expected

    # The requests really were spread over workers: some writes were followed by a listing
    # served by another worker (otherwise this test would prove nothing about coherence).
    lines = access_log(live_server.log())
    assert len(lines) > 4 * ROUNDS
    assert 1 < len({pid for pid, *_ in lines}) <= WORKERS, live_server.log_tail()
    assert _cross_worker(live_server), f"no write was followed by another worker's read in {rounds} rounds"


def _cross_worker(server: LiveServer) -> bool:
    """Whether some add or delete was directly followed by a listing that another worker served."""
    return any(
        write[1] in {"POST", "DELETE"}
        and write[2].startswith("/api/v1/posts/")
        and read[2] == LIST
        and write[0] != read[0]
        for write, read in itertools.pairwise(access_log(server.log()))
    )
