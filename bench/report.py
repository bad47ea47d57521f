"""Summaries of repeated wrk runs, ratios to each workload's own ceiling, verdicts, and the table/JSON/PNG outputs."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import targets
from bench.targets import Target, Verdict, mark
from bench.wrk import WrkResult

SPREAD_KINDS = ("keep-alive",)


@dataclass(frozen=True)
class Pairing:
    """The ceiling a workload run was paired with: its req/s and p99 (None for a computed ceiling)."""

    rps: float
    p99_ms: float | None = None


@dataclass(frozen=True)
class Summary:
    """The medians of repeated runs of one workload over one kind of connection, judged against its ceiling."""

    workload: str
    connections: str
    runs: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    run_rps: tuple[float, ...] = ()
    spread: float = 0.0
    ceiling: str | None = None
    ratio: float | None = None
    p99_ratio: float | None = None
    ratio_verdict: Verdict | None = None
    p99_verdict: Verdict | None = None
    spread_verdict: Verdict | None = None


def summarize(
    workload: str,
    connections: str,
    results: Sequence[WrkResult],
    *,
    ceiling: str | None = None,
    pairings: Sequence[Pairing] = (),
    target: Target | None = None,
) -> Summary:
    """Medians over the runs (errors summed: one is one too many), ratios to the paired ceiling, verdicts.

    `pairings[i]` is the ceiling measured right before `results[i]`; each ratio is the median of
    the per-run ratios, so a run compares only with a ceiling that saw the same machine load.
    """
    if not results:
        raise ValueError(f"no runs for {workload} ({connections})")
    if pairings and len(pairings) != len(results):
        raise ValueError(f"{len(pairings)} ceiling runs for {len(results)} runs of {workload} ({connections})")
    run_rps = tuple(result.rps for result in results)
    rps_ratios = [result.rps / pair.rps for result, pair in zip(results, pairings, strict=False) if pair.rps > 0]
    p99_ratios = [result.p99_ms / pair.p99_ms for result, pair in zip(results, pairings, strict=False) if pair.p99_ms]
    ratio = statistics.median(rps_ratios) if rps_ratios else None
    p99_ratio = statistics.median(p99_ratios) if p99_ratios else None
    runs = len(results)
    goal = target or Target()
    return Summary(
        workload=workload,
        connections=connections,
        runs=runs,
        rps=statistics.median(run_rps),
        p50_ms=statistics.median(result.p50_ms for result in results),
        p99_ms=statistics.median(result.p99_ms for result in results),
        non_2xx=sum(result.non_2xx for result in results),
        socket_errors=sum(result.socket_errors for result in results),
        run_rps=run_rps,
        spread=targets.spread(list(run_rps)),
        ceiling=ceiling,
        ratio=ratio,
        p99_ratio=p99_ratio,
        ratio_verdict=None if goal.min_ratio is None else targets.judge_ratio(ratio, runs, goal.min_ratio),
        p99_verdict=None if goal.max_p99_ratio is None else targets.judge_p99(p99_ratio, runs, goal.max_p99_ratio),
        spread_verdict=(
            targets.judge_spread(list(run_rps), goal.max_spread)
            if goal.max_spread is not None and connections in SPREAD_KINDS
            else None
        ),
    )


def checks(summaries: Sequence[Summary], peak_rss_mib: dict[str, dict[int, float]]) -> list[dict[str, Any]]:
    """Every verdict as one line: the workloads' targets, zero errors, and each judged server's worker RSS."""
    lines: list[dict[str, Any]] = []
    for s in summaries:
        for what, verdict in (
            (f"req/s / {s.ceiling}", s.ratio_verdict),
            (f"p99 / {s.ceiling}'s p99", s.p99_verdict),
            ("spread (max/min - 1)", s.spread_verdict),
        ):
            if verdict is not None:
                lines.append(_line(f"{s.workload} ({s.connections}): {what} {verdict.goal}", verdict))
    failing = [s for s in summaries if s.non_2xx or s.socket_errors]
    lines.append(
        {
            "target": "zero non-2xx and socket errors in every workload",
            "measured": ", ".join(f"{s.workload} ({s.connections})" for s in failing) or "none",
            "met": not failing,
        }
    )
    for server, peaks in peak_rss_mib.items():
        verdict = targets.judge_rss(max(peaks.values(), default=0.0))
        lines.append(_line(f"worker peak RSS ({server}) {verdict.goal}", verdict))
    return lines


def _line(target: str, verdict: Verdict) -> dict[str, Any]:
    measured = None if verdict.measured is None else round(verdict.measured, 3)
    return {"target": target, "measured": measured, "met": verdict.met}


def format_table(summaries: Sequence[Summary]) -> str:
    """A Markdown table: one row per workload and kind of connection, with its ratio, target and mark."""
    lines = [
        "| workload | connections | req/s | spread | p50 ms | p99 ms | non-2xx / socket err "
        "| ceiling | ratio | target | | p99 / ceiling's | |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for s in summaries:
        spread = f"{s.spread:.2f}" + (f" {mark(s.spread_verdict.met)}" if s.spread_verdict else "")
        ratio = "" if s.ratio is None else f"{s.ratio:.2f}"
        goal = s.ratio_verdict.goal if s.ratio_verdict else ""
        met = mark(s.ratio_verdict.met) if s.ratio_verdict else ""
        p99 = "" if s.p99_ratio is None else f"{s.p99_ratio:.1f}"
        p99_met = f"{mark(s.p99_verdict.met)} {s.p99_verdict.goal}" if s.p99_verdict else ""
        lines.append(
            f"| {s.workload} | {s.connections} | {s.rps:,.0f} | {spread} | {s.p50_ms:.2f} | {s.p99_ms:.2f} | "
            f"{s.non_2xx} / {s.socket_errors} | {s.ceiling or ''} | {ratio} | {goal} | {met} | {p99} | {p99_met} |"
        )
    return "\n".join(lines)


def format_checks(lines: list[dict[str, Any]]) -> str:
    """One line per verdict: ✓ met, ✗ missed, ? not judged (too few runs), and the measured value."""
    return "\n".join(f"- {mark(line['met'])} {line['target']}: measured {line['measured']}" for line in lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """The results document, pretty-printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_chart(path: Path, summaries: Sequence[Summary], title: str) -> None:
    """Each workload's ratio to its own ceiling as bars (keep-alive and fresh side by side), its target as a line.

    The title should say how many runs the medians summarize.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judged = [s for s in summaries if s.ratio is not None]
    names = list(dict.fromkeys(s.workload for s in judged))
    kinds = list(dict.fromkeys(s.connections for s in judged))
    ratios = {(s.workload, s.connections): s.ratio or 0.0 for s in judged}
    goals = {s.workload: s.ratio_verdict for s in judged if s.ratio_verdict is not None}
    width = 0.8 / max(1, len(kinds))
    figure, axes = plt.subplots(figsize=(12, 5.5))
    for offset, kind in enumerate(kinds):
        xs = [index + offset * width for index in range(len(names))]
        bars = axes.bar(xs, [ratios.get((name, kind), 0.0) for name in names], width, label=kind)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    for index, name in enumerate(names):
        verdict = goals.get(name)
        if verdict is not None:
            left = index - width / 2
            axes.hlines(verdict.threshold, left, left + width * len(kinds), colors="black", linestyles="--")
    axes.plot([], [], "k--", label="target")
    centers = [index + width * (len(kinds) - 1) / 2 for index in range(len(names))]
    ceilings = {s.workload: s.ceiling or "" for s in judged}
    labels = [f"{name}\nvs {ceilings[name]}" for name in names]
    axes.set_xticks(centers, labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("req/s / own ceiling's req/s")
    axes.set_ylim(bottom=0)
    axes.set_title(title, fontsize=10)
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
