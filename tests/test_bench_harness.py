"""The benchmark harness: wrk output parsing, the Lua scripts against a tiny server, pairing, targets, tables."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from bench import profile, stress, targets
from bench.ceiling import FreeList
from bench.harness import RESULT_MARKER, Account, WrkError, WrkResult, parse_result, run_wrk, script_text
from bench.standard import Medians, Row, format_ours_table, format_peer_table, paired_ratio, summarize
from bench.workloads import WORKLOADS, Subject, Workload, Wrk, fresh_ids, select

RESULT_LINE = (
    'BENCH_RESULT {"requests": 10000, "duration_us": 5000000, "p50_us": 2950, "p99_us": 12500, '
    '"non_2xx": 3, "socket_errors": 1}'
)


def result(rps: float, *, p50: float = 1.0, p99: float = 2.0, non_2xx: int = 0) -> WrkResult:
    return WrkResult(requests=int(rps * 10), duration_s=10.0, p50_ms=p50, p99_ms=p99, non_2xx=non_2xx, socket_errors=0)


def test_parse_result_reads_the_reporter_line() -> None:
    parsed = parse_result(f"Running 5s test @ http://127.0.0.1:8000/\nRequests/sec: 2000.00\n{RESULT_LINE}\n")
    assert parsed == WrkResult(requests=10000, duration_s=5.0, p50_ms=2.95, p99_ms=12.5, non_2xx=3, socket_errors=1)
    assert (parsed.rps, parsed.errors) == (2000.0, 4)


def test_parse_result_without_the_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="no BENCH_RESULT line"):
        parse_result("Running 5s test\nRequests/sec: 10\n")


def test_every_workload_script_has_the_shared_setup_and_ends_with_the_reporter() -> None:
    for name in {w.script for w in WORKLOADS} | {"seed_ids"}:
        text = script_text(name)
        assert "function setup(thread)" in text
        assert RESULT_MARKER.strip() in text.split("-- Appended to every workload script")[1]


class _Posts(BaseHTTPRequestHandler):
    """add-post, get_my_posts and delete_my_post as the contract answers them, for one user, in memory."""

    protocol_version = "HTTP/1.1"
    posts: ClassVar[set[str]] = set()
    deleted_unknown: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        post_id = str(uuid.uuid4())
        with self.lock:
            self.posts.add(post_id)
        self._answer(200, b'{"id": "%s"}' % post_id.encode())

    def do_GET(self) -> None:
        self._answer(200, b'[{"id": "5bb9ba60-2e5f-42b1-baf4-a9f74329baa0", "text": "x"}]')

    def do_DELETE(self) -> None:
        [post_id] = parse_qs(urlsplit(self.path).query)["post_id"]
        with self.lock:
            if post_id not in self.posts:
                type(self).deleted_unknown += 1
                self._answer(404, b'{"error": "Post not found"}')
                return
            self.posts.remove(post_id)
        self._answer(200, b'{"status": "post deleted successfully"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def posts_server() -> Iterator[str]:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    _Posts.posts, _Posts.deleted_unknown = set(), 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Posts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_cycle_deletes_exactly_the_posts_it_added(posts_server: str) -> None:
    measured = run_wrk(posts_server + "/api/v1/posts/", "cycle", ["token"], duration_s=1, connections=4, threads=4)
    assert measured.requests > 30 and measured.errors == 0
    assert _Posts.deleted_unknown == 0
    # Each connection has at most its latest post not yet deleted when the run ends.
    assert len(_Posts.posts) <= 4


def test_delete_ids_come_from_a_recorded_add_post_run_and_are_each_deleted_once(
    posts_server: str, tmp_path: Path
) -> None:
    subject = Subject("peer", posts_server, tmp_path)
    subject.accounts["deleter"] = Account("id", "deleter@example.com", "token")
    wrk = Wrk(duration_s=1, connections=4, threads=2)
    token, ids_path, threads = fresh_ids(subject, wrk)
    ids = Path(ids_path).read_text().split()
    # Every answered add is recorded; those still in flight when wrk stopped (at most one per connection) are not.
    assert len(ids) == len(set(ids)) > 10
    assert set(ids) <= _Posts.posts and len(_Posts.posts) - len(ids) <= wrk.connections
    deleted = run_wrk(posts_server + "/api/v1/posts/delete_my_post", "delete", [token, ids_path, threads], **vars(wrk))
    # 1 s of deletes against 1.5 s of adds: fewer deletes than ids, so no id repeats and none is unknown.
    assert deleted.errors == 0 and _Posts.deleted_unknown == 0
    assert 10 < deleted.requests < len(ids)


def test_paired_ratio_is_the_median_of_each_pairs_ratio_not_a_ratio_of_medians() -> None:
    # Pair by pair: 500/1000, 900/3000, 800/1000 -> 0.5, 0.3, 0.8.
    ours = [result(500), result(900), result(800)]
    assert paired_ratio(ours, [result(1000), result(3000), result(1000)]) == pytest.approx(0.5)
    assert paired_ratio(ours, [result(0), result(3000), result(1000)]) == pytest.approx(0.55)  # an idle run is skipped
    assert paired_ratio(ours, []) is None


def test_medians_sum_errors_and_refuse_no_runs() -> None:
    medians = Medians.of([result(100, p99=5, non_2xx=1), result(300, p99=1), result(200, p99=3, non_2xx=2)])
    assert medians == Medians(rps=200.0, p50_ms=1.0, p99_ms=3.0, errors=3)
    with pytest.raises(ValueError, match="no runs"):
        Medians.of([])


def test_marks_need_three_pairs_and_p99_must_be_strictly_below() -> None:
    assert targets.mark(2.0, 2.0, 3) == "✓"
    assert targets.mark(1.99, 2.0, 5) == "✗"
    assert targets.mark(3.0, 2.0, 2) == "?"
    assert targets.mark(None, 2.0, 3) == "?"
    assert targets.mark(10.0, 10.0, 3, below=True) == "✗"
    assert targets.mark(9.9, 10.0, 3, below=True) == "✓"
    assert (targets.rss_mark(149.9), targets.rss_mark(150.0)) == ("✓", "✗")


def test_the_cached_listings_floor_is_lower_with_redis_and_every_peer_workload_has_a_target() -> None:
    assert (targets.HIT.floor_for(redis=False), targets.HIT.floor_for(redis=True)) == (1.5, 1.2)
    assert targets.WRITES.floor_for(redis=True) == 1.2
    assert all(w.peer is not None for w in WORKLOADS if w.on_peer)


def _hit(runs: int, ours: float, peer: float, bare: float) -> Row:
    workload = Workload("hit", "/", "get", lambda s, w: [], peer=targets.HIT, ceiling=targets.HIT_CEILING)
    recorded = {
        ("hit", "ours"): [result(ours, p50=2, p99=10)] * runs,
        ("hit", "peer"): [result(peer, p50=3, p99=50)] * runs,
        (targets.BARE, "ceiling"): [result(bare)] * runs,
    }
    return summarize(workload, recorded, redis=True)


def test_summarize_judges_against_the_peer_and_our_ceiling() -> None:
    row = _hit(3, ours=1500, peer=1000, bare=6000)
    assert (row.ratio, row.floor, row.ceiling_rps, row.ceiling_ratio) == (1.5, 1.2, 6000, 0.25)
    assert format_peer_table([row]).splitlines()[2] == (
        "| hit | 1,500 | 1,000 | 1.50x | ≥ 2x ✗ | ≥ 1.2x ✓ | 2.0 / 10.0 | 3.0 / 50.0 | ✓ | 0 / 0 |"
    )
    assert format_ours_table([row]).splitlines()[2] == (
        "| hit | 1,500 | 2.0 / 10.0 | 0 | bare Flask view | 6,000 | 0.25 | ≥ 0.6 ✗ |"
    )
    assert "?" in format_peer_table([_hit(2, ours=3000, peer=1000, bare=3000)])


def test_select_by_part_of_a_name() -> None:
    assert [w.name for w in select(WORKLOADS, ("sign", "delete_my"))] == ["delete_my_post", "sign_in"]
    assert select(WORKLOADS, ()) == WORKLOADS


def test_the_stress_registry_names_every_scenario() -> None:
    assert {"slow", "oversize", "outage", "listing"} <= set(stress.SCENARIOS)
    assert all(callable(scenario) for scenario in stress.SCENARIOS.values())


def test_the_ceilings_connections_need_a_mysql_url() -> None:
    with pytest.raises(ValueError, match="not a MySQL/MariaDB URL"):
        FreeList("sqlite:///tmp/x.db")


ROOT = "_bootstrap (threading.py:1002);wsgi_app (flask/app.py:1511)"
ADD_POST = f"{ROOT};add_post (blueprints/posts/routes.py:30)"
COLLAPSED = "\n".join(
    [
        f"{ADD_POST};add (repositories/posts.py:44);_write_bytes (pymysql/connections.py:854) 6",
        f"{ADD_POST};loads (core/json_provider.py:21) 3",
        "_bootstrap (threading.py:1002);select (selectors.py:468) 1",
        "not a stack line",
    ]
)


def test_profile_tops_by_own_samples_and_the_services_own_frames() -> None:
    own, total, samples = profile.top_entries(COLLAPSED, {"blueprints", "repositories", "core"}, limit=2)
    assert samples == 10
    assert own == [("_write_bytes (pymysql/connections.py:854)", 6), ("loads (core/json_provider.py:21)", 3)]
    assert total == [("add_post (blueprints/posts/routes.py:30)", 9), ("add (repositories/posts.py:44)", 6)]
    assert {"cache", "blueprints", "services", "repositories"} <= profile.PROJECT_DIRS
    assert "bench" not in profile.PROJECT_DIRS and "tests" not in profile.PROJECT_DIRS
    assert profile.frame_dir("<module> (wsgi.py:3)") == ""


def test_profiles_of_several_workers_merge_by_stack() -> None:
    assert sorted(profile.merge(["a;b 2\nc 1\n", "a;b 3\n"]).splitlines()) == ["a;b 5", "c 1"]
