"""The scale run's table: each workload at each number of active users, ours against the peer, judged; no I/O.

Runs are recorded per (workload, active users, server) in pair order, so a ratio is the median
of per-pair ratios (bench/standard.py's `paired_ratio`), as in the standard run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench import targets
from bench.harness import WrkResult
from bench.standard import Medians, paired_ratio
from bench.targets import PeerTarget, errors_mark, flat_mark, mark

OURS, PEER = "ours", "peer"
LISTING = "get_my_posts"
ALWAYS_MISS = "get_my_posts?limit=1000 (never cached)"
# The flatness target compares our listing at these two numbers of active users.
FLAT_USERS = (1, 100)

Runs = dict[tuple[str, int, str], list[WrkResult]]
# Errors of the unmeasured warm-up runs, by the same key: "no errors" holds for every run.
WarmUpErrors = dict[tuple[str, int, str], int]


def _with_errors(medians: Medians, more: int) -> Medians:
    return replace(medians, errors=medians.errors + more)


@dataclass(frozen=True)
class ScaleRow:
    """One workload at one number of active users: our figures, the peer's, and the ratios they are judged by.

    `miss_ratio` (listings only) is ours over our always-miss listing at the same number of users.
    """

    workload: str
    users: int
    pairs: int
    ours: Medians
    peer: Medians | None = None
    ratio: float | None = None
    target: PeerTarget | None = None
    miss_ratio: float | None = None


def scale_row(
    workload: str, users: int, runs: Runs, target: PeerTarget | None, warm_up_errors: WarmUpErrors | None = None
) -> ScaleRow:
    """The row of one workload at `users` from every run recorded; errors include the warm-up runs' too."""
    ours = runs[(workload, users, OURS)]
    peer = runs.get((workload, users, PEER), [])
    miss = runs.get((ALWAYS_MISS, users, OURS), []) if workload == LISTING else []
    warm = warm_up_errors or {}
    return ScaleRow(
        workload=workload,
        users=users,
        pairs=len(ours),
        ours=_with_errors(Medians.of(ours), warm.get((workload, users, OURS), 0)),
        peer=_with_errors(Medians.of(peer), warm.get((workload, users, PEER), 0)) if peer else None,
        ratio=paired_ratio(ours, peer),
        target=target if peer else None,
        miss_ratio=paired_ratio(ours, miss),
    )


def flatness(runs: Runs) -> tuple[float | None, int]:
    """Our listing at 100 active users over at 1 (median of per-pair ratios), and the pairs it rests on."""
    few, many = (runs.get((LISTING, users, OURS), []) for users in FLAT_USERS)
    return paired_ratio(many, few), min(len(few), len(many))


def _ms(value: float) -> str:
    return f"{value:.1f}"


def format_scale_table(rows: Sequence[ScaleRow]) -> str:
    """Markdown: one line per workload and number of active users, with ✓/✗ for each target."""
    lines = [
        "| workload | users | ours req/s | peer req/s | ours / peer | floor | goal | ours p50 / p99 ms "
        "| peer p99 ms | p99 below peer's | errors ours / peer | no errors | listing / always-miss |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        peer_rps = peer_p99 = ratio = floor = goal = below = ""
        peer_errors = "-"
        if r.peer is not None:
            peer_rps, peer_p99, peer_errors = f"{r.peer.rps:,.0f}", _ms(r.peer.p99_ms), str(r.peer.errors)
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
            below = mark(r.ours.p99_ms, r.peer.p99_ms, r.pairs, below=True)
        if r.target is not None:
            floor = f"≥ {r.target.floor:g}x {mark(r.ratio, r.target.floor, r.pairs)}"
            goal = f"≥ {r.target.goal:g}x {mark(r.ratio, r.target.goal, r.pairs)}"
        miss = "" if r.miss_ratio is None else f"{r.miss_ratio:.2f} ≥ 1 {mark(r.miss_ratio, 1.0, r.pairs)}"
        lines.append(
            f"| {r.workload} | {r.users:,} | {r.ours.rps:,.0f} | {peer_rps} | {ratio} | {floor} | {goal} "
            f"| {_ms(r.ours.p50_ms)} / {_ms(r.ours.p99_ms)} | {peer_p99} | {below} "
            f"| {r.ours.errors} / {peer_errors} | {errors_mark(r.ours.errors)} | {miss} |"
        )
    return "\n".join(lines)


def format_flatness(ratio: float | None, pairs: int) -> str:
    """The flatness line: our listing at 100 active users over at 1, judged."""
    few, many = FLAT_USERS
    if ratio is None:
        return f"flatness: not measured (needs --users {few},{many} and our listing)"
    within = round(100 * (1 - targets.FLATNESS))
    return (
        f"flatness: our get_my_posts at {many} active users / at {few}: {ratio:.2f} "
        f"(within {within} % of each other {flat_mark(ratio, pairs)})"
    )


def format_rss(after_mib: float, users: int, peak_mib: float) -> str:
    """The memory line: our workers' largest RSS after the runs at the most users, judged; their peak."""
    limit = targets.SCALE_WORKER_RSS_LIMIT_MIB
    return (
        f"our workers' RSS (VmRSS, the larger worker) after the {users:,}-user runs: {after_mib:.1f} MiB "
        f"(< {limit:g} MiB {targets.rss_mark(after_mib, limit)}); peak (VmHWM) {peak_mib:.1f} MiB"
    )
