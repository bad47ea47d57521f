"""Every measured run (req/s, latencies, its paired ceiling, which workers served it) and its per-run outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.accesslog import WorkerShare, format_shares
from bench.report import Pairing
from bench.workloads import Workload
from bench.wrk import WrkResult


@dataclass
class Measured:
    """Every measured run, keyed by (workload, connection kind), in the order they ran."""

    results: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)
    pairings: dict[tuple[str, str], list[Pairing]] = field(default_factory=dict)
    shares: dict[tuple[str, str], list[dict[int, WorkerShare]]] = field(default_factory=dict)
    verify_ms: list[float] = field(default_factory=list)
    # The serving server's largest worker VmHWM after the set-up and each workload's warm-up
    # (its first run): VmHWM only grows, so the step after which it jumps is the one that raised it.
    peak_rss_after: dict[str, float] = field(default_factory=dict)

    def add(self, key: tuple[str, str], result: WrkResult, shares: dict[int, WorkerShare]) -> None:
        """Record one run and which workers served it."""
        self.results.setdefault(key, []).append(result)
        self.shares.setdefault(key, []).append(shares)


def worker_lines(measured: Measured, workers: int) -> list[str]:
    """For each workload and kind, every run's req/s and its per-worker split (bimodal keep-alive runs show here)."""
    lines = []
    for (name, kind), runs in measured.shares.items():
        cells = "; ".join(
            f"{result.rps:,.0f} req/s: {format_shares(shares, workers)}"
            for result, shares in zip(measured.results[(name, kind)], runs, strict=True)
        )
        lines.append(f"- {name} ({kind}): {cells}")
    return lines


def peak_rss_lines(measured: Measured) -> list[str]:
    """`- after <step>: N MiB` for the serving server's largest worker peak RSS after each step."""
    return [f"- after {step}: {mib:.1f} MiB" for step, mib in measured.peak_rss_after.items()]


def runs_document(measured: Measured) -> list[dict[str, Any]]:
    """Every run for the JSON: req/s, latencies, its paired ceiling, and the per-worker split."""
    runs = []
    for key, results in measured.results.items():
        pairings = measured.pairings.get(key, [])
        for index, result in enumerate(results):
            runs.append(
                {
                    "workload": key[0],
                    "connections": key[1],
                    "index": index,
                    **asdict(result),
                    "rps": result.rps,
                    "ceiling": asdict(pairings[index]) if index < len(pairings) else None,
                    "workers": {str(pid): asdict(share) for pid, share in measured.shares[key][index].items()},
                }
            )
    return runs


def run_line(
    run_index: int,
    runs: int,
    workload: Workload,
    kind: str,
    result: WrkResult,
    shares: dict[int, WorkerShare],
    workers: int,
    pairing: Pairing | None,
) -> str:
    """One progress line: the run's figures, which workers served it, and its paired ceiling."""
    ceiling = ""
    if pairing is not None:
        p99 = f", p99 {pairing.p99_ms:.2f} ms" if pairing.p99_ms is not None else ""
        ceiling = f"  [{workload.ceiling}: {pairing.rps:,.0f} req/s{p99}]"
    return (
        f"run {run_index + 1}/{runs} {workload.name:<26} {kind:<10} "
        f"{result.rps:>9,.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  "
        f"non-2xx {result.non_2xx}  socket errors {result.socket_errors}  "
        f"workers {format_shares(shares, workers)}{ceiling}"
    )
