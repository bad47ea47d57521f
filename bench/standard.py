"""The standard run: every workload against ours (and the peer, A B A B), with our ceilings in each pair; the tables.

Each pair runs our ceilings, then each workload against ours and right after against the peer, so
a ratio compares two runs that saw the same machine; the tables show medians over the pairs, and
each ratio is the median of the per-pair ratios.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete

from bench import harness, targets
from bench.harness import Account, WrkResult
from bench.profile import Profiler
from bench.targets import mark
from bench.workloads import WORKLOADS, Subject, Workload, Wrk, select
from models.tables import PostRow
from tests.support.redis import RedisServer
from tests.support.schema import create_schema

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WARM_UP_SECONDS = 1.0
OURS, PEER, CEILING = "ours", "peer", "ceiling"


@dataclass(frozen=True)
class Options:
    """What to run, against whom, and how hard."""

    wrk: Wrk = field(default_factory=Wrk)
    pairs: int = 3
    peer: str | None = None
    redis: bool = False
    mariadb: str | None = None
    only: tuple[str, ...] = ()
    gunicorn_args: str = ""
    profile: bool = False
    label: str = ""


@dataclass(frozen=True)
class Medians:
    """Medians of one workload's runs against one server; errors summed."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def of(cls, results: Sequence[WrkResult]) -> Medians:
        """The medians of some runs (ValueError when there are none)."""
        if not results:
            raise ValueError("no runs")
        return cls(
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
        )


def paired_ratio(ours: Sequence[WrkResult], others: Sequence[WrkResult]) -> float | None:
    """The median of ours[i].rps / others[i].rps over the pairs where the other served anything."""
    ratios = [a.rps / b.rps for a, b in zip(ours, others, strict=False) if b.rps > 0]
    return statistics.median(ratios) if ratios else None


@dataclass(frozen=True)
class Row:
    """One workload's figures: ours, the peer's, the ratios and the targets they are judged against."""

    workload: str
    pairs: int
    ours: Medians
    peer: Medians | None = None
    ratio: float | None = None
    target: targets.PeerTarget | None = None
    floor: float | None = None
    ceiling: targets.CeilingTarget | None = None
    ceiling_rps: float | None = None
    ceiling_ratio: float | None = None


def summarize(workload: Workload, runs: dict[tuple[str, str], list[WrkResult]], redis: bool) -> Row:
    """The row of one workload from every run recorded under (workload or ceiling name, subject)."""
    ours = runs[(workload.name, OURS)]
    peer = runs.get((workload.name, PEER), [])
    ceiling = runs.get((workload.ceiling.ceiling, CEILING), []) if workload.ceiling else []
    return Row(
        workload=workload.name,
        pairs=len(ours),
        ours=Medians.of(ours),
        peer=Medians.of(peer) if peer else None,
        ratio=paired_ratio(ours, peer),
        target=workload.peer if peer else None,
        floor=workload.peer.floor_for(redis) if peer and workload.peer else None,
        ceiling=workload.ceiling,
        ceiling_rps=Medians.of(ceiling).rps if ceiling else None,
        ceiling_ratio=paired_ratio(ours, ceiling),
    )


def _latency(m: Medians) -> str:
    return f"{m.p50_ms:.1f} / {m.p99_ms:.1f}"


def format_peer_table(rows: Sequence[Row]) -> str:
    """Markdown: ours against the peer per workload, with ✓/✗ for the goal, the floor and the p99."""
    lines = [
        "| workload | ours req/s | peer req/s | ours / peer | goal | floor | ours p50 / p99 ms "
        "| peer p50 / p99 ms | p99 below peer's | errors ours / peer |",
        "|---|---:|---:|---:|---|---|---:|---:|---|---:|",
    ]
    for r in rows:
        if r.peer is None:
            continue
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        goal = f"≥ {r.target.goal:g}x {mark(r.ratio, r.target.goal, r.pairs)}" if r.target else ""
        floor = f"≥ {r.floor:g}x {mark(r.ratio, r.floor, r.pairs)}" if r.floor is not None else ""
        p99 = mark(r.ours.p99_ms, r.peer.p99_ms, r.pairs, below=True)
        lines.append(
            f"| {r.workload} | {r.ours.rps:,.0f} | {r.peer.rps:,.0f} | {ratio} | {goal} | {floor} "
            f"| {_latency(r.ours)} | {_latency(r.peer)} | {p99} | {r.ours.errors} / {r.peer.errors} |"
        )
    return "\n".join(lines)


def format_ours_table(rows: Sequence[Row]) -> str:
    """Markdown: ours per workload, with its ratio to our own ceiling where there is a target."""
    lines = [
        "| workload | ours req/s | p50 / p99 ms | errors | ceiling | ceiling req/s | ours / ceiling | goal |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ceiling = goal = ratio = rps = ""
        if r.ceiling and r.ceiling_rps is not None:
            ceiling, rps = r.ceiling.ceiling, f"{r.ceiling_rps:,.0f}"
            ratio = "" if r.ceiling_ratio is None else f"{r.ceiling_ratio:.2f}"
            goal = f"≥ {r.ceiling.goal:g} {mark(r.ceiling_ratio, r.ceiling.goal, r.pairs)}"
        lines.append(
            f"| {r.workload} | {r.ours.rps:,.0f} | {_latency(r.ours)} | {r.ours.errors} "
            f"| {ceiling} | {rps} | {ratio} | {goal} |"
        )
    return "\n".join(lines)


@dataclass
class Servers:
    """What `bench_servers` started: our service, our ceilings, the database URL."""

    ours: harness.Gunicorn
    ceiling: harness.Gunicorn
    url: str


@contextmanager
def bench_servers(options: Options, work_dir: Path) -> Iterator[Servers]:
    """MariaDB (or a fresh database on `options.mariadb`), Redis if asked, our service and ceilings; stopped on exit."""
    with ExitStack() as stack:
        if options.mariadb:
            url = harness.fresh_database(options.mariadb, "posts_bench")
        else:
            mariadb = harness.start_mariadb(work_dir)
            stack.callback(mariadb.close)
            url = mariadb.create_database("bench")
        create_schema(url)
        cache_env: dict[str, str] = {}
        if options.redis:
            redis = RedisServer(work_dir / "redis")
            redis.start()
            stack.callback(redis.stop)
            cache_env = {"REDIS_URL": redis.url}
        started = []
        for name, app, env in (("ours", "wsgi:app", cache_env), ("ceiling", "bench.ceiling:app", {})):
            env = {"DATABASE_URL": url, **env}
            server = harness.start_server(name, app, work_dir, env, gunicorn_args=options.gunicorn_args)
            stack.callback(server.stop)
            started.append(server)
        yield Servers(started[0], started[1], url)


def run(options: Options) -> list[Row]:
    """Run every chosen workload for `options.pairs` pairs, print the tables, write JSON under bench/results/."""
    harness.wrk_path()
    work_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    load_before = os.getloadavg()[0]
    runs: dict[tuple[str, str], list[WrkResult]] = {}
    workloads = select(WORKLOADS, options.only)
    try:
        with bench_servers(options, work_dir) as servers:
            engine = create_engine(servers.url)

            def drop_posts(account: Account) -> None:
                with engine.begin() as connection:
                    connection.execute(delete(PostRow).where(PostRow.user_id == uuid.UUID(account.id)))

            ours = Subject(OURS, servers.ours.base, work_dir, drop_posts=drop_posts)
            subjects = [ours] + ([Subject(PEER, options.peer.rstrip("/"), work_dir)] if options.peer else [])
            for subject in subjects:
                subject.prepare()
            ceiling = Subject(CEILING, servers.ceiling.base, work_dir)
            writer = harness.new_account(ours.base, "ceiling")
            ceilings = [
                Workload(targets.BARE, "/", "get", lambda s, w: ["-"]),
                Workload(targets.WRITE, f"/write?user_id={writer.id}", "add_post", lambda s, w: ["-", "20"]),
            ]
            for workload in [*ceilings, *workloads]:
                if workload.warm_up:
                    for subject in [ceiling] if workload in ceilings else subjects:
                        workload.run(subject, options.wrk, WARM_UP_SECONDS)
            for pair in range(options.pairs):
                for workload in ceilings:
                    _record(runs, workload, ceiling, workload.run(ceiling, options.wrk), pair, options)
                for workload in workloads:
                    for subject in subjects:
                        if subject.name == PEER and not workload.on_peer:
                            continue
                        profiler = None
                        if options.profile and pair == 0 and subject is ours:
                            path = RESULTS_DIR / f"profile-{slug(workload.name)}.txt"
                            profiler = Profiler(servers.ours.server.worker_pids(), options.wrk.duration_s, path)
                            profiler.start()
                        result = workload.run(subject, options.wrk)
                        _record(runs, workload, subject, result, pair, options)
                        if profiler:
                            print(profiler.report(), flush=True)
            peak_rss = servers.ours.peak_rss_mib()
            engine.dispose()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    rows = [summarize(workload, runs, options.redis) for workload in workloads]
    _print(options, rows, peak_rss, load_before)
    _write_json(options, rows, peak_rss)
    return rows


def _record(
    runs: dict[tuple[str, str], list[WrkResult]],
    workload: Workload,
    subject: Subject,
    result: WrkResult,
    pair: int,
    options: Options,
) -> None:
    runs.setdefault((workload.name, subject.name), []).append(result)
    print(
        f"pair {pair + 1}/{options.pairs} {workload.name:<31} {subject.name:<7} {result.rps:>9,.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}",
        flush=True,
    )


def _configuration(options: Options) -> str:
    cache = "REDIS_URL (a throwaway redis-server)" if options.redis else "the default cache (filesystem on /dev/shm)"
    extra = f" {options.gunicorn_args}" if options.gunicorn_args else ""
    peer = f"; peer {options.peer}" if options.peer else ""
    return f"ours: gunicorn -c gunicorn.conf.py{extra}, {harness.WORKERS} workers, {cache}{peer}"


def _print(options: Options, rows: list[Row], peak_rss: float, load_before: float) -> None:
    w = options.wrk
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d}, {_configuration(options)}; wrk {w.connections} connections, "
        f"medians of {options.pairs} pairs of {w.duration_s:g} s runs; {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    if options.peer:
        print(format_peer_table(rows) + "\n")
    print(format_ours_table(rows) + "\n")
    limit = f"< {targets.WORKER_RSS_LIMIT_MIB:g} MiB {targets.rss_mark(peak_rss)}"
    print(f"our workers' peak RSS (VmHWM) after the run: {peak_rss:.1f} MiB ({limit})")


def _write_json(options: Options, rows: list[Row], peak_rss: float) -> None:
    stem = options.label or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    document: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(),
        "configuration": _configuration(options),
        "options": asdict(options),
        "rows": [asdict(row) for row in rows],
        "worker_peak_rss_mib": peak_rss,
    }
    write_results(f"standard-{stem}.json", document)


def write_results(name: str, document: dict[str, Any]) -> None:
    """Write a run's JSON document to bench/results/`name` and say where."""
    path = RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"results: {path}")


def slug(name: str) -> str:
    """A workload's name as a piece of a file name."""
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")
