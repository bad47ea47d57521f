"""The benchmark harness's pure parts: wrk output parsing, medians, ratios to the ceiling, targets."""

from __future__ import annotations

import pytest

from bench import report
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


def test_summarize_refuses_no_runs() -> None:
    with pytest.raises(ValueError, match="no runs"):
        report.summarize("add-post", "fresh", [])


def test_ratios_divide_by_the_ceiling_of_the_same_connection_kind() -> None:
    summaries = report.with_ratios(
        [
            report.summarize("ceiling", "keep-alive", [result(4000)]),
            report.summarize("ceiling", "fresh", [result(2000)]),
            report.summarize("get_my_posts hit (20)", "keep-alive", [result(3000)]),
            report.summarize("get_my_posts hit (20)", "fresh", [result(1000)]),
            report.summarize("orphan", "other", [result(10)]),
        ]
    )
    ratios = {(s.workload, s.connections): s.ratio for s in summaries}
    assert ratios[("ceiling", "keep-alive")] == 1.0
    assert ratios[("get_my_posts hit (20)", "keep-alive")] == 0.75
    assert ratios[("get_my_posts hit (20)", "fresh")] == 0.5
    assert ratios[("orphan", "other")] is None


def test_sign_in_target_is_workers_over_verify_time() -> None:
    assert report.sign_in_target(2, 0.02) == pytest.approx(80.0)


def test_targets_report_met_and_missed() -> None:
    summaries = report.with_ratios(
        [
            report.summarize("ceiling", "keep-alive", [result(1000)]),
            report.summarize("get_my_posts hit (20)", "keep-alive", [result(700)]),
            report.summarize("add-post", "keep-alive", [result(349)]),
            report.summarize("sign_in", "keep-alive", [result(81)]),
            report.summarize("sign_up", "fresh", [result(5, non_2xx=1)]),
        ]
    )
    checks = {c["target"].split(" >=")[0].split(":")[0]: c for c in report.check_targets(summaries, 2, 0.02)}
    assert checks["get_my_posts hit (20)"]["met"] is True
    assert checks["add-post"]["met"] is False
    assert checks["sign_in"]["met"] is True
    errors = checks["zero non-2xx and socket errors in every workload"]
    assert errors["met"] is False
    assert errors["measured"] == "sign_up (fresh)"


def test_table_has_a_row_per_summary() -> None:
    summaries = report.with_ratios([report.summarize("ceiling", "keep-alive", [result(1234.4)])])
    table = report.format_table(summaries)
    assert table.splitlines()[2] == "| ceiling | keep-alive | 1,234 | 1.00 | 2.00 | 0 | 0 | 1.00 |"


def test_paired_ratios_take_the_median_of_each_runs_ratio() -> None:
    summaries = report.with_ratios(
        [
            report.summarize("ceiling", "keep-alive", [result(1000), result(3000)]),
            report.summarize("add-post", "keep-alive", [result(500), result(900)]),
        ],
        {("add-post", "keep-alive"): [0.5, 0.3, 0.4]},
    )
    ratios = {s.workload: s.ratio for s in summaries}
    assert ratios == {"ceiling": 1.0, "add-post": 0.4}
