"""Standard mode: every workload against MariaDB under gunicorn, the ceiling interleaved, medians of N runs."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench import report, servers
from bench.profile import Profiler
from bench.workloads import Workload, prepare
from bench.wrk import WrkResult, ensure_wrk, run_wrk
from core.config import Settings
from services.passwords import Passwords
from tests.support.schema import create_schema

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONNECTION_KINDS = {"keep-alive": "keep", "fresh": "close"}
WARM_UP_SECONDS = 1.0
CEILING_PAIR_SECONDS = 3.0
# The bench servers run on the settings' defaults: CACHE_MAX_ENTRIES x CACHE_MAX_ENTRY_BYTES.
CACHE_BOUND_BYTES = (
    Settings.model_fields["cache_max_entries"].default * Settings.model_fields["cache_max_entry_bytes"].default
)
VERIFY_SAMPLES = 15


@dataclass(frozen=True)
class Options:
    """How long, how often and how hard to drive each workload."""

    duration_s: float = 5.0
    runs: int = 3
    connections: int = 16
    threads: int = 2
    only: tuple[str, ...] = ()
    kinds: tuple[str, ...] = tuple(CONNECTION_KINDS)
    label: str = ""
    profile: bool = False
    gunicorn_args: str = ""


def argon2_verify_seconds(samples: int = VERIFY_SAMPLES) -> float:
    """Median time of one argon2id verification with the service's parameters, in this process."""
    passwords = Passwords()
    password_hash = passwords.hash("bench-password-1")
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        passwords.verify(password_hash, "bench-password-1")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def bench_servers(
    work_dir: Path, gunicorn_env: dict[str, str] | None = None
) -> Iterator[tuple[dict[str, servers.Gunicorn], str]]:
    """MariaDB, the ceiling, the service, and the service with listing caching disabled; all stopped on exit.

    `gunicorn_env` (e.g. GUNICORN_CMD_ARGS) applies to all three servers alike, the ceiling included.
    """
    with ExitStack() as stack:
        mariadb = servers.start_mariadb(work_dir)
        stack.callback(mariadb.close)
        url = mariadb.create_database("bench")
        create_schema(url)
        started: dict[str, servers.Gunicorn] = {}
        # The miss server caches no listing (every encoded body exceeds 1 byte), so each
        # get_my_posts still reads the user's cache version and then queries and encodes.
        for name, app, env in (
            ("ceiling", "bench.ceiling:app", {}),
            ("app", "wsgi:app", {"DATABASE_URL": url}),
            ("miss", "wsgi:app", {"DATABASE_URL": url, "CACHE_MAX_ENTRY_BYTES": "1"}),
        ):
            started[name] = servers.start_gunicorn(name, app, work_dir, **env, **(gunicorn_env or {}))
            stack.callback(started[name].stop)
        yield started, url


def drive(
    workload: Workload,
    server: servers.Gunicorn,
    kind: str,
    options: Options,
    duration_s: float,
    profiler: Profiler | None = None,
) -> WrkResult:
    """One wrk run of the workload over keep-alive or fresh connections (optionally under py-spy)."""
    extra = workload.before_run(duration_s) if workload.before_run else []
    args = [workload.token or "-", CONNECTION_KINDS[kind], *workload.args, *extra]
    if profiler:
        profiler.start()
    try:
        return run_wrk(
            server.base + workload.path,
            workload.script,
            args,
            duration_s=duration_s,
            connections=options.connections,
            threads=options.threads,
        )
    finally:
        if workload.after_run:
            workload.after_run()


def run(options: Options) -> dict[str, Any]:
    """Run the standard benchmark, print the table and write JSON and PNG under bench/results/."""
    ensure_wrk()
    work_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        args_env = {"GUNICORN_CMD_ARGS": options.gunicorn_args} if options.gunicorn_args else {}
        with bench_servers(work_dir, args_env) as (started, url):
            engine = create_engine(url)
            workloads, _ = prepare(started["app"].base, engine, work_dir)
            if options.only:
                workloads = [w for w in workloads if w.name == "ceiling" or any(o in w.name for o in options.only)]
            ceiling = next(w for w in workloads if w.name == report.CEILING)
            for workload in workloads:
                drive(workload, started[workload.server], "keep-alive", options, WARM_UP_SECONDS)
            results: dict[tuple[str, str], list[WrkResult]] = {}
            paired: dict[tuple[str, str], list[float]] = {}
            verify_times: list[float] = []
            for run_index in range(options.runs):
                for workload in workloads:
                    if workload is ceiling:
                        continue
                    if workload.name == report.SIGN_IN:
                        # Measured beside the sign-in runs, so both see the same machine load.
                        verify_times.append(argon2_verify_seconds())
                    for kind in options.kinds:
                        # The ceiling runs right before each workload: the machine is shared and its
                        # speed drifts, so each ratio compares two runs that saw the same conditions.
                        top = drive(
                            ceiling, started["ceiling"], kind, options, min(CEILING_PAIR_SECONDS, options.duration_s)
                        )
                        results.setdefault((ceiling.name, kind), []).append(top)
                        server = started[workload.server]
                        profiler = _profiler(options, run_index, kind, workload, server)
                        result = drive(workload, server, kind, options, options.duration_s, profiler)
                        if profiler:
                            print(profiler.report(), flush=True)
                        results.setdefault((workload.name, kind), []).append(result)
                        paired.setdefault((workload.name, kind), []).append(result.rps / top.rps if top.rps else 0.0)
                        print(
                            f"run {run_index + 1}/{options.runs} {workload.name:<26} {kind:<10} "
                            f"{result.rps:>9,.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  "
                            f"non-2xx {result.non_2xx}  socket errors {result.socket_errors}  "
                            f"ceiling {top.rps:,.0f} req/s",
                            flush=True,
                        )
            verify_s = statistics.median(verify_times) if verify_times else argon2_verify_seconds()
            memory = {name: started[name].worker_rss_mib() for name in ("app", "miss")}
            cache_bytes = started["app"].cache_bytes()
            engine.dispose()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    # Table order: the ceiling first, then the workloads as listed, keep-alive before fresh.
    order = {w.name: index for index, w in enumerate(workloads)}
    keys = sorted(results, key=lambda key: (order[key[0]], list(CONNECTION_KINDS).index(key[1])))
    summaries = report.with_ratios([report.summarize(name, kind, results[(name, kind)]) for name, kind in keys], paired)
    checks = report.check_targets(summaries, servers.WORKERS, verify_s)
    document = {
        "mode": "standard",
        "label": options.label,
        "finished_at": datetime.now(UTC).isoformat(),
        "options": asdict(options),
        "workers": servers.WORKERS,
        "argon2_verify_ms": round(verify_s * 1000, 2),
        "argon2_verify_ms_samples": [round(t * 1000, 2) for t in verify_times],
        "summaries": [asdict(s) for s in summaries],
        "targets": checks,
        "worker_rss_mib": memory,
        "filesystem_cache_bytes": cache_bytes,
        "cache_bound_bytes": CACHE_BOUND_BYTES,
    }
    stem = f"standard-{options.label or datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    report.write_json(RESULTS_DIR / f"{stem}.json", document)
    report.write_chart(RESULTS_DIR / f"{stem}.png", summaries, f"Ratio to the bare-Flask ceiling ({stem})")
    print()
    print(report.format_table(summaries))
    print()
    print(report.format_checks(checks))
    for name, rss in memory.items():
        print(
            f"worker RSS ({name}): "
            + ", ".join(f"pid {pid}: {mib:.1f} MiB" for pid, mib in rss.items())
            + " (target < 200 MiB)"
        )
    print(
        f"filesystem cache: {cache_bytes / 1024 / 1024:.2f} MiB "
        f"(bound: {CACHE_BOUND_BYTES / 1024 / 1024:.0f} MiB = entries x max entry bytes)"
    )
    print(f"results: {RESULTS_DIR / stem}.json and .png")
    return document


def _profiler(
    options: Options, run_index: int, kind: str, workload: Workload, server: servers.Gunicorn
) -> Profiler | None:
    """py-spy on the server's first worker during the workload's first keep-alive run, when asked for."""
    if not (options.profile and run_index == 0 and kind == "keep-alive"):
        return None
    path = RESULTS_DIR / f"profile-{_slug(workload.name)}.txt"
    return Profiler(server.worker_pids()[0], options.duration_s, path)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")
