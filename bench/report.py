"""Summaries of repeated wrk runs, ratios to the ceiling, the targets, and the table/JSON/PNG outputs."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.wrk import WrkResult

CEILING = "ceiling"
# Issue 4's targets as fractions of the ceiling's req/s, for keep-alive connections.
CEILING_TARGETS = {"get_my_posts hit (20)": 0.7, "add-post": 0.35, "get_my_posts miss (20)": 0.35}
SIGN_IN = "sign_in"
SIGN_IN_FACTOR = 0.8


@dataclass(frozen=True)
class Summary:
    """The median of repeated runs of one workload over one kind of connection."""

    workload: str
    connections: str
    runs: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    ratio: float | None = None


def summarize(workload: str, connections: str, results: list[WrkResult]) -> Summary:
    """Medians of req/s, p50 and p99 over the runs; errors are summed (one is one too many)."""
    if not results:
        raise ValueError(f"no runs for {workload} ({connections})")
    return Summary(
        workload=workload,
        connections=connections,
        runs=len(results),
        rps=statistics.median(result.rps for result in results),
        p50_ms=statistics.median(result.p50_ms for result in results),
        p99_ms=statistics.median(result.p99_ms for result in results),
        non_2xx=sum(result.non_2xx for result in results),
        socket_errors=sum(result.socket_errors for result in results),
    )


def with_ratios(summaries: list[Summary], paired: dict[tuple[str, str], list[float]] | None = None) -> list[Summary]:
    """Each summary with its ratio to the ceiling over the same kind of connection.

    With `paired` (each run's req/s over the ceiling run right before it) the ratio is their
    median; otherwise the median req/s over the ceiling's median req/s.
    """
    ceilings = {s.connections: s.rps for s in summaries if s.workload == CEILING}
    out = []
    for summary in summaries:
        ceiling = ceilings.get(summary.connections)
        pairs = (paired or {}).get((summary.workload, summary.connections))
        if summary.workload == CEILING:
            ratio: float | None = 1.0
        elif pairs:
            ratio = statistics.median(pairs)
        else:
            ratio = summary.rps / ceiling if ceiling else None
        out.append(Summary(**{**asdict(summary), "ratio": ratio}))
    return out


def sign_in_target(workers: int, verify_seconds: float) -> float:
    """The sign-in goal in req/s: 0.8 x workers / one argon2id verification."""
    return SIGN_IN_FACTOR * workers / verify_seconds


def check_targets(summaries: list[Summary], workers: int, verify_seconds: float) -> list[dict[str, Any]]:
    """Each target of the issue, measured over keep-alive connections, with whether it is met."""
    by_name = {s.workload: s for s in summaries if s.connections == "keep-alive"}
    checks: list[dict[str, Any]] = []
    for name, goal in CEILING_TARGETS.items():
        summary = by_name.get(name)
        if summary is not None and summary.ratio is not None:
            checks.append(
                {
                    "target": f"{name} >= {goal} x ceiling",
                    "measured": round(summary.ratio, 3),
                    "met": summary.ratio >= goal,
                }
            )
    sign_in = by_name.get(SIGN_IN)
    if sign_in is not None:
        goal_rps = sign_in_target(workers, verify_seconds)
        verify_ms = verify_seconds * 1000
        checks.append(
            {
                "target": f"sign_in >= {SIGN_IN_FACTOR} x {workers} / {verify_ms:.1f} ms = {goal_rps:.1f} req/s",
                "measured": round(sign_in.rps, 1),
                "met": sign_in.rps >= goal_rps,
            }
        )
    failing = [s for s in summaries if s.non_2xx or s.socket_errors]
    checks.append(
        {
            "target": "zero non-2xx and socket errors in every workload",
            "measured": ", ".join(f"{s.workload} ({s.connections})" for s in failing) or "none",
            "met": not failing,
        }
    )
    return checks


def format_table(summaries: list[Summary]) -> str:
    """A Markdown table: one row per workload and kind of connection."""
    lines = [
        "| workload | connections | req/s | p50 ms | p99 ms | non-2xx | socket errors | ratio to ceiling |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        ratio = "" if s.ratio is None else f"{s.ratio:.2f}"
        lines.append(
            f"| {s.workload} | {s.connections} | {s.rps:,.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f} | "
            f"{s.non_2xx} | {s.socket_errors} | {ratio} |"
        )
    return "\n".join(lines)


def format_checks(checks: list[dict[str, Any]]) -> str:
    """One line per target: met or missed, and the measured value."""
    return "\n".join(f"- [{'x' if c['met'] else ' '}] {c['target']}: measured {c['measured']}" for c in checks)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """The results document, pretty-printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_chart(path: Path, summaries: list[Summary], title: str) -> None:
    """A bar chart of each workload's ratio to the ceiling, keep-alive and fresh connections side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(s.workload for s in summaries))
    kinds = list(dict.fromkeys(s.connections for s in summaries))
    ratios = {(s.workload, s.connections): s.ratio or 0.0 for s in summaries}
    width = 0.8 / max(1, len(kinds))
    figure, axes = plt.subplots(figsize=(12, 5))
    for offset, kind in enumerate(kinds):
        xs = [index + offset * width for index in range(len(names))]
        axes.bar(xs, [ratios.get((name, kind), 0.0) for name in names], width, label=kind)
    axes.set_xticks(
        [index + width * (len(kinds) - 1) / 2 for index in range(len(names))], names, rotation=30, ha="right"
    )
    axes.set_ylabel("req/s ÷ ceiling req/s")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_scaling_chart(path: Path, growth: list[dict[str, Any]], own: list[dict[str, Any]]) -> None:
    """Two panels: req/s against table size (flat is good), miss latency against own posts (linear is good)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    sizes = [point["posts_in_table"] for point in growth]
    left.plot(sizes, [point["add_post"]["rps"] for point in growth], marker="o", label="add-post")
    left.plot(
        sizes, [point["miss_20_posts"]["rps"] for point in growth], marker="o", label="get_my_posts miss (20 posts)"
    )
    left.set_xlabel("rows in posts")
    left.set_ylabel("req/s")
    left.set_ylim(bottom=0)
    left.legend()
    left.set_title("Flat as the table grows (indexes)")
    counts = [point["own_posts"] for point in own]
    right.loglog(counts, [point["miss"]["p50_ms"] for point in own], marker="o", label="measured p50")
    right.set_xlabel("the user's own posts")
    right.set_ylabel("p50 ms (cache miss)")
    right.legend()
    right.set_title("Linear in the user's own posts (no N+1)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
