"""The issue's targets and how a measurement is judged against them (pure functions; no I/O).

Every workload is compared with its own ceiling measured in the same run (bench/ceiling.py,
or for sign-in/sign-up `workers / one argon2id verification`). A verdict is met (True),
missed (False) or not judged (None) when there are too few runs to judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Medians of fewer runs are shown but not judged.
MIN_RUNS = 3
# "Five runs within +-15 % of each other": max/min - 1 over at least this many runs.
SPREAD_RUNS = 5
# "p99 <= 3 x the ceiling's p99 in the same run", for the hot workloads.
HOT_P99_RATIO = 3.0
WORKER_RSS_LIMIT_MIB = 150.0


@dataclass(frozen=True)
class Target:
    """What one workload must reach against its ceiling, over every kind of connection."""

    min_ratio: float | None = None
    """Median of (run req/s / its paired ceiling's req/s) at least this."""
    max_p99_ratio: float | None = None
    """Median of (run p99 / its paired ceiling's p99) at most this."""
    max_spread: float | None = None
    """Over keep-alive runs: max req/s / min req/s - 1 at most this, over SPREAD_RUNS runs or more."""


@dataclass(frozen=True)
class Verdict:
    """One target applied to one measurement."""

    goal: str
    threshold: float
    measured: float | None
    met: bool | None


def spread(values: list[float]) -> float:
    """max / min - 1: 0.0 for identical runs; infinite when a run measured nothing."""
    if not values:
        return 0.0
    low = min(values)
    return max(values) / low - 1 if low > 0 else float("inf")


def judge_ratio(ratio: float | None, runs: int, min_ratio: float) -> Verdict:
    """Ratio to the ceiling against its floor; not judged below MIN_RUNS runs or without a ratio."""
    met = None if ratio is None or runs < MIN_RUNS else ratio >= min_ratio
    return Verdict(f">= {min_ratio:.2f}", min_ratio, ratio, met)


def judge_p99(p99_ratio: float | None, runs: int, max_ratio: float) -> Verdict:
    """p99 over the ceiling's p99 against its cap; not judged below MIN_RUNS runs or without one."""
    met = None if p99_ratio is None or runs < MIN_RUNS else p99_ratio <= max_ratio
    return Verdict(f"<= {max_ratio:.1f}", max_ratio, p99_ratio, met)


def judge_spread(run_rps: list[float], max_spread: float) -> Verdict:
    """The runs' spread against its cap; not judged below SPREAD_RUNS runs."""
    value = spread(run_rps)
    met = None if len(run_rps) < SPREAD_RUNS else value <= max_spread
    return Verdict(f"<= {max_spread:.2f} over >= {SPREAD_RUNS} runs", max_spread, value, met)


def judge_rss(peak_mib: float, limit_mib: float = WORKER_RSS_LIMIT_MIB) -> Verdict:
    """A worker's peak resident memory against the limit."""
    return Verdict(f"< {limit_mib:.0f} MiB", limit_mib, peak_mib, peak_mib < limit_mib)


def argon2_ceiling_rps(workers: int, verify_seconds: float) -> float:
    """Sign-in's ceiling in req/s: every worker verifying one argon2id hash after another."""
    return workers / verify_seconds


def mark(met: bool | None) -> str:
    """✓ met, ✗ missed, ? not judged."""
    return {True: "✓", False: "✗", None: "?"}[met]
