"""The benchmark harness's pure parts: wrk output parsing, medians, ratios to each ceiling, targets, access logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import accesslog, profile, rawdb, report, targets
from bench.accesslog import WorkerShare
from bench.report import Pairing
from bench.standard import select
from bench.targets import Target
from bench.workloads import ARGON2, Workload
from bench.wrk import RESULT_MARKER, WrkError, WrkResult, parse_result, script_text

RESULT_LINE = (
    'BENCH_RESULT {"requests": 10000, "duration_us": 5000000, "p50_us": 2950, "p99_us": 12500, '
    '"non_2xx": 3, "socket_errors": 1}'
)
WRK_OUTPUT = f"""Running 5s test @ http://127.0.0.1:8000/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  30.00ms   90.00%
  10000 requests in 5.00s, 1.50MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   2000.00
{RESULT_LINE}
"""


def result(rps: float, *, p50: float = 1.0, p99: float = 2.0, non_2xx: int = 0) -> WrkResult:
    return WrkResult(requests=int(rps * 10), duration_s=10.0, p50_ms=p50, p99_ms=p99, non_2xx=non_2xx, socket_errors=0)


def test_parse_result_reads_the_reporter_line() -> None:
    parsed = parse_result(WRK_OUTPUT)
    assert parsed == WrkResult(requests=10000, duration_s=5.0, p50_ms=2.95, p99_ms=12.5, non_2xx=3, socket_errors=1)
    assert parsed.rps == 2000.0


def test_parse_result_without_the_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="no BENCH_RESULT line"):
        parse_result("Running 5s test\nRequests/sec: 10\n")


def test_every_script_ends_with_the_reporter() -> None:
    for name in ("get", "add_post", "delete", "sign_in", "sign_up"):
        text = script_text(name)
        assert "function setup(thread)" in text
        assert text.rstrip().endswith("end")
        assert RESULT_MARKER.strip() in text.split("-- Appended to every workload script")[1]


def test_summarize_takes_medians_and_sums_errors() -> None:
    summary = report.summarize(
        "add-post", "keep-alive", [result(100, p50=5, non_2xx=1), result(300, p50=1), result(200, p50=3, non_2xx=2)]
    )
    assert (summary.rps, summary.p50_ms, summary.non_2xx, summary.runs) == (200.0, 3.0, 3, 3)
    assert summary.run_rps == (100.0, 300.0, 200.0)
    assert summary.spread == pytest.approx(2.0)
    assert (summary.ceiling, summary.ratio, summary.ratio_verdict) == (None, None, None)


def test_summarize_refuses_no_runs() -> None:
    with pytest.raises(ValueError, match="no runs"):
        report.summarize("add-post", "fresh", [])


def test_summarize_refuses_a_ceiling_run_count_that_does_not_pair() -> None:
    with pytest.raises(ValueError, match="1 ceiling runs for 2 runs"):
        report.summarize("add-post", "fresh", [result(1), result(2)], pairings=[Pairing(10)])


def test_ratios_are_medians_of_each_runs_ratio_to_its_own_ceiling_run() -> None:
    # Run by run: 500/1000, 900/3000, 800/1000 -> 0.5, 0.3, 0.8; the median pairs, not medians divided.
    summary = report.summarize(
        "add-post",
        "keep-alive",
        [result(500, p99=4), result(900, p99=9), result(800, p99=30)],
        ceiling="write ceiling (20 B)",
        pairings=[Pairing(1000, 2), Pairing(3000, 3), Pairing(1000, 5)],
    )
    assert summary.ratio == pytest.approx(0.5)
    assert summary.p99_ratio == pytest.approx(3.0)  # 2, 3, 6
    assert summary.ceiling == "write ceiling (20 B)"


def test_a_computed_ceiling_has_no_p99_and_an_idle_ceiling_run_is_skipped() -> None:
    summary = report.summarize(
        "sign_in", "fresh", [result(30), result(36), result(99)], pairings=[Pairing(40), Pairing(40), Pairing(0)]
    )
    assert summary.ratio == pytest.approx(0.825)  # 0.75 and 0.9; the run beside a 0 req/s ceiling is left out
    assert summary.p99_ratio is None


def test_targets_are_judged_from_three_runs_and_spread_from_five_keep_alive_runs() -> None:
    target = Target(min_ratio=0.8, max_p99_ratio=3.0, max_spread=0.15)
    pairings = [Pairing(1000, 1.0)] * 5

    def summary(kind: str, rps: list[float], p99: float = 2.0) -> report.Summary:
        runs = [result(value, p99=p99) for value in rps]
        return report.summarize("hit", kind, runs, ceiling="bare", pairings=pairings[: len(rps)], target=target)

    two = summary("keep-alive", [900, 900])
    assert two.ratio_verdict is not None and two.ratio_verdict.met is None
    met = summary("keep-alive", [800, 850, 900])
    assert met.ratio_verdict is not None and met.ratio_verdict.met is True
    assert met.p99_verdict is not None and met.p99_verdict.met is True
    assert met.spread_verdict is not None and met.spread_verdict.met is None  # 3 of the 5 runs it needs
    missed = summary("keep-alive", [700, 790, 950], p99=3.5)
    assert missed.ratio_verdict is not None and missed.ratio_verdict.met is False
    assert missed.p99_verdict is not None and missed.p99_verdict.met is False
    steady = summary("keep-alive", [1000, 1100, 1150, 1050, 1000])
    assert steady.spread_verdict is not None and steady.spread_verdict.met is True
    bimodal = summary("keep-alive", [1000, 1200, 1150, 1050, 1000])
    assert bimodal.spread_verdict is not None and bimodal.spread_verdict.met is False
    fresh = summary("fresh", [1000, 1200, 1150, 1050, 1000])
    assert fresh.spread_verdict is None  # the spread target is for keep-alive runs


def test_spread_is_max_over_min_minus_one() -> None:
    assert targets.spread([100, 115, 110]) == pytest.approx(0.15)
    assert targets.spread([5.0]) == 0.0
    assert targets.spread([]) == 0.0
    assert targets.spread([0.0, 10.0]) == float("inf")


def test_rss_limit_is_strict() -> None:
    assert targets.judge_rss(149.9).met is True
    assert targets.judge_rss(150.0).met is False


def test_argon2_ceiling_is_workers_over_verify_time() -> None:
    assert targets.argon2_ceiling_rps(2, 0.02) == pytest.approx(100.0)


def test_checks_list_every_verdict_errors_and_memory() -> None:
    summaries = [
        report.summarize("bare", "keep-alive", [result(1000)] * 3),
        report.summarize(
            "add-post",
            "keep-alive",
            [result(700)] * 3,
            ceiling="write",
            pairings=[Pairing(1000, 1.0)] * 3,
            target=Target(min_ratio=0.75),
        ),
        report.summarize("sign_up", "fresh", [result(5, non_2xx=1)]),
    ]
    lines = report.checks(summaries, {"app": {1: 120.0, 2: 151.0}, "miss": {3: 90.0}})
    by_target = {line["target"]: line for line in lines}
    assert by_target["add-post (keep-alive): req/s / write >= 0.75"] == {
        "target": "add-post (keep-alive): req/s / write >= 0.75",
        "measured": 0.7,
        "met": False,
    }
    assert by_target["zero non-2xx and socket errors in every workload"]["measured"] == "sign_up (fresh)"
    assert by_target["worker peak RSS (app) < 150 MiB"]["met"] is False
    assert by_target["worker peak RSS (miss) < 150 MiB"]["met"] is True
    assert len(lines) == 4
    formatted = report.format_checks(lines).splitlines()
    assert formatted[0] == "- ✗ add-post (keep-alive): req/s / write >= 0.75: measured 0.7"


def test_table_has_a_row_per_summary_with_ratio_target_and_marks() -> None:
    summaries = [
        report.summarize("bare", "keep-alive", [result(1234.4)]),
        report.summarize(
            "hit",
            "keep-alive",
            [result(900, p99=2.0)] * 3,
            ceiling="bare",
            pairings=[Pairing(1000, 1.0)] * 3,
            target=Target(min_ratio=0.8, max_p99_ratio=3.0, max_spread=0.15),
        ),
    ]
    rows = report.format_table(summaries).splitlines()
    assert rows[2] == "| bare | keep-alive | 1,234 | 0.00 | 1.00 | 2.00 | 0 / 0 |  |  |  |  |  |  |"
    assert rows[3] == (
        "| hit | keep-alive | 900 | 0.00 ? | 1.00 | 2.00 | 0 / 0 | bare | 0.90 | >= 0.80 | ✓ | 2.0 | ✓ <= 3.0 |"
    )


def test_the_chart_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench dependency group is not installed")
    summaries = [
        report.summarize(
            "hit", kind, [result(900)] * 3, ceiling="bare", pairings=[Pairing(1000)] * 3, target=Target(0.8)
        )
        for kind in ("keep-alive", "fresh")
    ]
    path = tmp_path / "chart.png"
    report.write_chart(path, summaries, "medians of 3 runs")
    assert path.read_bytes().startswith(b"\x89PNG")


def _access(pid: int, port: int | None, status: int) -> str:
    return json.dumps(
        {"ts": "t", "level": "INFO", "logger": "gunicorn.access", "pid": pid, "client_port": port, "status": status}
    )


LOG = "\n".join(
    [
        _access(11, 50001, 200),
        _access(12, 50002, 200),
        json.dumps({"ts": "t", "level": "INFO", "logger": "posts.audit", "pid": 11, "message": "sign_in"}),
        _access(11, 50001, 200),
        _access(11, 50003, 404),
        _access(12, None, 200),
        '{"logger": "gunicorn.access", "pid": 11, "cut',
    ]
)


def test_worker_shares_count_requests_and_connections_per_pid() -> None:
    shares = accesslog.worker_shares(LOG)
    assert shares == {11: WorkerShare(requests=3, connections=2), 12: WorkerShare(requests=2, connections=2)}
    assert accesslog.busiest_share(shares) == pytest.approx(0.6)
    assert accesslog.busiest_share({}) == 0.0


def test_format_shares_shows_a_worker_that_served_nothing() -> None:
    assert accesslog.format_shares({11: WorkerShare(9, 16)}, 2) == "100%/0% of 9 req, conns 16/0"
    assert accesslog.format_shares(accesslog.worker_shares(LOG), 2) == "60%/40% of 5 req, conns 2/2"


def test_connect_arguments_read_a_sqlalchemy_url() -> None:
    arguments = rawdb.connect_arguments("mysql+pymysql://bench:p%40ss@127.0.0.1:3307/bench")
    assert {key: arguments[key] for key in ("host", "port", "user", "password", "database", "charset")} == {
        "host": "127.0.0.1",
        "port": 3307,
        "user": "bench",
        "password": "p@ss",
        "database": "bench",
        "charset": "utf8mb4",
    }
    assert rawdb.connect_arguments("mariadb://root@db/x")["port"] == 3306
    with pytest.raises(ValueError, match="not a MySQL/MariaDB URL"):
        rawdb.connect_arguments("sqlite:///tmp/x.db")


def workload(name: str, server: str = "app", ceiling: str | None = None) -> Workload:
    return Workload(name, server, "/", "get", ceiling=ceiling)


def test_select_keeps_the_ceilings_the_chosen_workloads_need() -> None:
    workloads = [
        workload("bare", "ceiling"),
        workload("write", "ceiling"),
        workload("read", "ceiling"),
        workload("hit", ceiling="bare"),
        workload("add-post", ceiling="write"),
        workload("sign_in", ceiling=ARGON2),
    ]
    assert [w.name for w in select(workloads, ("add", "sign"))] == ["write", "add-post", "sign_in"]
    assert select(workloads, ()) == workloads


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


def test_profile_tops_by_own_and_total_samples() -> None:
    own, total, samples = profile.top_entries(COLLAPSED, limit=2)
    assert samples == 10
    assert own == [("_write_bytes (pymysql/connections.py:854)", 6), ("loads (core/json_provider.py:21)", 3)]
    assert total[0] == ("_bootstrap (threading.py:1002)", 10)


def test_profile_service_code_keeps_only_the_projects_own_frames() -> None:
    entries = profile.project_entries(COLLAPSED, {"blueprints", "repositories", "core"})
    assert entries == [
        ("add_post (blueprints/posts/routes.py:30)", 9),
        ("add (repositories/posts.py:44)", 6),
        ("loads (core/json_provider.py:21)", 3),
    ]
    assert {"cache", "blueprints", "services", "repositories"} <= profile.PROJECT_DIRS
    assert "bench" not in profile.PROJECT_DIRS and "tests" not in profile.PROJECT_DIRS
    assert profile.frame_dir("f (flask/app.py:1)") == "flask"
    assert profile.frame_dir("<module> (wsgi.py:3)") == ""


def test_profiles_of_several_workers_merge_by_stack() -> None:
    merged = profile.merge(["a;b 2\nc 1\n", "a;b 3\n"])
    assert sorted(merged.splitlines()) == ["a;b 5", "c 1"]
