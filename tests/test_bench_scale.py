"""The scale run's pure parts: its scripts against a tiny server, the table, the judging, the options."""

from __future__ import annotations

import collections
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from bench import scale, targets
from bench.harness import RESULT_MARKER, WrkError, WrkResult, run_wrk, script_text
from bench.scale import SCALE_WORKLOADS, Side, parse_users, problems, run_once, select_scale
from bench.scale_table import (
    ALWAYS_MISS,
    LISTING,
    flatness,
    format_flatness,
    format_rss,
    format_scale_table,
    scale_row,
)
from bench.seed import write_tokens
from bench.workloads import Wrk

TOKENS = [f"token-{i}" for i in range(6)]


def result(rps: float, *, p50: float = 1.0, p99: float = 2.0, non_2xx: int = 0) -> WrkResult:
    return WrkResult(requests=int(rps * 10), duration_s=10.0, p50_ms=p50, p99_ms=p99, non_2xx=non_2xx, socket_errors=0)


@dataclass
class Seen:
    """What the tiny server was asked: each request's method, path and token; posts per token."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    posts: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    foreign_deletes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Recorder(BaseHTTPRequestHandler):
    """add-post, get_my_posts and delete_my_post for any bearer token, each token its own user."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[Seen] = Seen()

    def _token(self) -> str:
        return self.headers.get("Authorization", "").removeprefix("Bearer ")

    def _answer(self, body: bytes, status: int = 200) -> None:
        with self.seen.lock:
            self.seen.requests.append((self.command, self.path, self._token()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(b"[]")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        post_id = str(uuid.uuid4())
        with self.seen.lock:
            self.seen.posts[self._token()].add(post_id)
        self._answer(b'{"id": "%s"}' % post_id.encode())

    def do_DELETE(self) -> None:
        [post_id] = parse_qs(urlsplit(self.path).query)["post_id"]
        with self.seen.lock:
            mine = post_id in self.seen.posts[self._token()]
            self.seen.posts[self._token()].discard(post_id)
            self.seen.foreign_deletes += not mine
        self._answer(b'{"status": "post deleted successfully"}' if mine else b'{"error": "x"}', 200 if mine else 404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    _Recorder.seen = Seen()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return write_tokens(tmp_path / "tokens.txt", TOKENS)


def test_every_scale_script_has_the_shared_setup_and_ends_with_the_reporter() -> None:
    for name in {w.script for w in SCALE_WORKLOADS}:
        text = script_text(name)
        assert "function setup(thread)" in text and "function load_tokens(" in text
        assert RESULT_MARKER.strip() in text.split("-- Appended to every workload script")[1]


def test_the_token_file_is_one_token_a_line_in_account_order(token_file: Path) -> None:
    assert token_file.read_text().splitlines() == TOKENS


def test_listing_requests_go_as_random_accounts_among_the_first_n_and_keep_the_query(
    recorder: str, token_file: Path
) -> None:
    measured = run_wrk(
        recorder + "/api/v1/posts/get_my_posts?limit=1000",
        "scale_get",
        [str(token_file), "4"],
        duration_s=1,
        connections=4,
        threads=2,
    )
    seen = _Recorder.seen.requests
    assert measured.errors == 0 and len(seen) > 40
    assert {path for _, path, _ in seen} == {"/api/v1/posts/get_my_posts?limit=1000"}
    tokens = collections.Counter(token for _, _, token in seen)
    # Every one of the first four accounts, none after them, none far more often than the others.
    assert set(tokens) == set(TOKENS[:4])
    assert max(tokens.values()) < 2 * min(tokens.values())


def test_one_active_user_is_account_zero_alone(recorder: str, token_file: Path) -> None:
    run_wrk(recorder + "/x", "scale_get", [str(token_file), "1"], duration_s=1, connections=2, threads=2)
    assert {token for _, _, token in _Recorder.seen.requests} == {TOKENS[0]}


def test_add_post_sends_the_text_size_asked_as_random_accounts(recorder: str, token_file: Path) -> None:
    measured = run_wrk(
        recorder + "/api/v1/posts/add-post",
        "scale_add",
        [str(token_file), "6", "20"],
        duration_s=1,
        connections=2,
        threads=2,
    )
    assert measured.errors == 0
    assert {method for method, _, _ in _Recorder.seen.requests} == {"POST"}
    assert set(_Recorder.seen.posts) == set(TOKENS)


def test_a_cycle_lists_and_deletes_as_the_account_that_added(recorder: str, token_file: Path) -> None:
    measured = run_wrk(
        recorder + "/api/v1/posts/", "scale_cycle", [str(token_file), "3"], duration_s=1, connections=3, threads=3
    )
    seen = _Recorder.seen
    assert measured.errors == 0 and seen.foreign_deletes == 0
    # Each connection has at most its latest post not yet deleted when the run ends.
    assert sum(len(posts) for posts in seen.posts.values()) <= 3
    assert {token for _, _, token in seen.requests} == set(TOKENS[:3])
    methods = collections.Counter(method for method, _, _ in seen.requests)
    assert methods["POST"] - 3 <= methods["GET"] <= methods["POST"]


def test_a_token_file_shorter_than_n_stops_wrk(recorder: str, token_file: Path) -> None:
    with pytest.raises(WrkError, match="holds 6 tokens, not 7"):
        run_wrk(recorder + "/x", "scale_get", [str(token_file), "7"], duration_s=1, connections=1, threads=1)


def test_a_run_cleans_up_before_it_once_the_sides_last_run_had_time_to_drain(
    recorder: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scale, "DRAIN_SECONDS", 0.5)
    cleaned: list[float] = []

    def clean_up() -> int:
        cleaned.append(time.monotonic())
        return 0

    side = Side("peer", recorder, token_file, clean_up)
    [add] = [w for w in SCALE_WORKLOADS if w.name == "add-post"]
    wrk = Wrk(duration_s=1, connections=2, threads=2)
    first = run_once(add, side, 3, wrk)
    first_ended = side.ended
    assert first.requests > 0 and len(cleaned) == 1 and cleaned[0] < first_ended
    run_once(add, side, 3, wrk, clean=False)
    assert len(cleaned) == 1  # a run right after its warm-up goes on from where it left the data
    second_ended = side.ended
    run_once(add, side, 3, wrk)
    assert len(cleaned) == 2 and cleaned[1] >= second_ended + 0.5


def test_users_are_numbers_separated_by_commas() -> None:
    assert parse_users("1,100, 1000,20_000") == (1, 100, 1000, 20000)
    for bad in ("", "1,x", "0,100", "-5"):
        with pytest.raises(ValueError, match="--users"):
            parse_users(bad)


def test_select_scale_workloads_by_part_of_a_name() -> None:
    assert [w.name for w in select_scale(SCALE_WORKLOADS, ("get_my_posts",))] == [LISTING, ALWAYS_MISS]
    assert select_scale(SCALE_WORKLOADS, ()) == SCALE_WORKLOADS
    # The always-miss listing is ours alone: a page our service never caches.
    [miss] = [w for w in SCALE_WORKLOADS if w.name == ALWAYS_MISS]
    assert not miss.on_peer and miss.target is None and miss.path.endswith("?limit=1000")
    assert all(w.target == targets.SCALE for w in SCALE_WORKLOADS if w.on_peer)


def _runs(pairs: int) -> dict[tuple[str, int, str], list[WrkResult]]:
    return {
        (LISTING, 1, "ours"): [result(2000, p99=10)] * pairs,
        (LISTING, 1, "peer"): [result(1000, p99=50)] * pairs,
        (ALWAYS_MISS, 1, "ours"): [result(500)] * pairs,
        (LISTING, 100, "ours"): [result(150, p50=80, p99=400, non_2xx=1)] * pairs,
        (LISTING, 100, "peer"): [result(1500, p99=60)] * pairs,
        (ALWAYS_MISS, 100, "ours"): [result(300)] * pairs,
        ("add-post", 100, "ours"): [result(1200, p99=30)] * pairs,
        ("add-post", 100, "peer"): [result(1000, p99=40)] * pairs,
    }


def test_the_scale_table_judges_every_target_per_row() -> None:
    runs = _runs(3)
    rows = [
        scale_row(LISTING, 1, runs, targets.SCALE),
        scale_row(ALWAYS_MISS, 1, runs, None),
        scale_row(LISTING, 100, runs, targets.SCALE),
        scale_row("add-post", 100, runs, targets.SCALE),
    ]
    assert (rows[0].ratio, rows[0].miss_ratio, rows[2].ratio, rows[2].miss_ratio) == (2.0, 4.0, 0.1, 0.5)
    assert rows[1].peer is None and rows[1].miss_ratio is None and rows[3].miss_ratio is None
    lines = format_scale_table(rows).splitlines()
    assert lines[2] == (
        "| get_my_posts | 1 | 2,000 | 1,000 | 2.00x | ≥ 1x ✓ | ≥ 1.5x ✓ | 1.0 / 10.0 | 50.0 | ✓ | 0 / 0 | ✓ "
        "| 4.00 ≥ 1 ✓ |"
    )
    assert lines[3] == f"| {ALWAYS_MISS} | 1 | 500 |  |  |  |  | 1.0 / 2.0 |  |  | 0 / - | ✓ |  |"
    assert lines[4] == (
        "| get_my_posts | 100 | 150 | 1,500 | 0.10x | ≥ 1x ✗ | ≥ 1.5x ✗ | 80.0 / 400.0 | 60.0 | ✗ | 3 / 0 | ✗ "
        "| 0.50 ≥ 1 ✗ |"
    )
    assert lines[5] == (
        "| add-post | 100 | 1,200 | 1,000 | 1.20x | ≥ 1x ✓ | ≥ 1.5x ✗ | 1.0 / 30.0 | 40.0 | ✓ | 0 / 0 | ✓ |  |"
    )


def test_errors_of_the_warm_up_runs_count_too() -> None:
    warm = {(LISTING, 1, "ours"): 2, (LISTING, 1, "peer"): 1, ("add-post", 100, "ours"): 5}
    row = scale_row(LISTING, 1, _runs(3), targets.SCALE, warm)
    assert (row.ours.errors, row.peer.errors if row.peer else None) == (2, 1)
    assert "| 2 / 1 | ✗ |" in format_scale_table([row])
    assert scale_row(LISTING, 1, _runs(3), targets.SCALE, {}).ours.errors == 0


def test_the_kept_log_is_what_went_wrong_and_the_answers_of_400_and_above() -> None:
    log = "\n".join(
        [
            '{"logger": "gunicorn.access", "status": 200, "message": "GET / 200"}',
            '{"logger": "gunicorn.access", "status": 503, "message": "GET /api/v1/posts/get_my_posts 503"}',
            '{"logger": "gunicorn.access", "status": 404, "message": "DELETE ... 404"}',
            '{"logger": "blueprints.errors", "level": "ERROR", "message": "database unavailable: TimeoutError"}',
            "[2026-12-07 23:00:00 +0000] [1] [WARNING] a plain gunicorn line",
            '{"logger": "gunicorn.access", "message": "no status"}',
            "",
        ]
    )
    kept = problems(log).splitlines()
    assert len(kept) == 5 and not any('"status": 200' in line for line in kept)
    assert problems("") == ""


def test_with_fewer_than_three_pairs_ratios_are_shown_not_judged_but_errors_are() -> None:
    runs = _runs(1)
    line = format_scale_table([scale_row(LISTING, 100, runs, targets.SCALE)]).splitlines()[2]
    assert "≥ 1x ?" in line and "0.50 ≥ 1 ?" in line and "| 1 / 0 | ✗ |" in line


def test_flatness_is_our_100_user_listing_over_the_1_user_one_within_20_percent_either_way() -> None:
    ratio, pairs = flatness(_runs(3))
    assert (ratio, pairs) == (0.075, 3)
    assert format_flatness(ratio, pairs) == (
        "flatness: our get_my_posts at 100 active users / at 1: 0.07 (within 20 % of each other ✗)"
    )
    assert [targets.flat_mark(r, 3) for r in (0.8, 1.0, 1.25, 0.79, 1.26)] == ["✓", "✓", "✓", "✗", "✗"]
    assert targets.flat_mark(1.0, 2) == "?"
    assert flatness({}) == (None, 0)
    assert "not measured" in format_flatness(None, 0)


def test_the_rss_line_judges_the_memory_after_the_most_users_against_200_mib() -> None:
    assert format_rss(150.04, 20000, 180.0) == (
        "our workers' RSS (VmRSS, the larger worker) after the 20,000-user runs: 150.0 MiB (< 200 MiB ✓); "
        "peak (VmHWM) 180.0 MiB"
    )
    assert "(< 200 MiB ✗)" in format_rss(200.0, 20000, 210.0)
    assert (targets.errors_mark(0), targets.errors_mark(1)) == ("✓", "✗")
