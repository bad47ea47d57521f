"""Standard mode: every workload against MariaDB under gunicorn, each run right after its own ceiling's, medians."""

from __future__ import annotations

import os
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

from bench import report, runs, servers, targets
from bench.accesslog import WorkerShare
from bench.profile import Profiler
from bench.workloads import ARGON2, CEILING_SERVER, Workload, check_read_ceiling, prepare
from bench.wrk import WrkResult, ensure_wrk, run_wrk
from config import Settings
from services.passwords import Passwords
from tests.support.redis import RedisServer
from tests.support.schema import create_schema

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONNECTION_KINDS = {"keep-alive": "keep", "fresh": "close"}
WARM_UP_SECONDS = 1.0
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
    gunicorn_threads: int | None = None
    worker_class: str | None = None
    redis: bool = False


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


@dataclass
class BenchServers:
    """What `bench_servers` started: the gunicorn servers by name, the database URL, and Redis if any."""

    started: dict[str, servers.Gunicorn]
    url: str
    redis: RedisServer | None = None


@contextmanager
def bench_servers(
    work_dir: Path,
    gunicorn_env: dict[str, str] | None = None,
    *,
    worker_class: str | None = None,
    with_redis: bool = False,
) -> Iterator[BenchServers]:
    """MariaDB, the ceilings, the service, and the service with listing caching disabled; all stopped on exit.

    `gunicorn_env` (e.g. GUNICORN_THREADS) and `worker_class` apply to all three servers alike, the
    ceilings included. `with_redis` starts a throwaway redis-server and gives the service REDIS_URL
    (the listing cache then lives there), one database for each of the two service servers.
    """
    with ExitStack() as stack:
        mariadb = servers.start_mariadb(work_dir)
        stack.callback(mariadb.close)
        url = mariadb.create_database("bench")
        create_schema(url)
        redis: RedisServer | None = None
        cache_env: dict[str, dict[str, str]] = {"app": {}, "miss": {}}
        if with_redis:
            redis = RedisServer(work_dir / "redis")
            redis.start()
            stack.callback(redis.stop)
            cache_env = {"app": {"REDIS_URL": redis.url}, "miss": {"REDIS_URL": redis.url[:-1] + "1"}}
        started: dict[str, servers.Gunicorn] = {}
        # The miss server caches no listing (every encoded body exceeds 1 byte), so each
        # get_my_posts still reads the user's cache version and then queries and encodes.
        for name, app, env in (
            (CEILING_SERVER, "bench.ceiling:app", {"DATABASE_URL": url}),
            ("app", "wsgi:app", {"DATABASE_URL": url, **cache_env["app"]}),
            ("miss", "wsgi:app", {"DATABASE_URL": url, "CACHE_MAX_ENTRY_BYTES": "1", **cache_env["miss"]}),
        ):
            started[name] = servers.start_gunicorn_server(
                name, app, work_dir, worker_class=worker_class, **env, **(gunicorn_env or {})
            )
            stack.callback(started[name].stop)
        yield BenchServers(started, url, redis)


def drive(
    workload: Workload,
    server: servers.Gunicorn,
    kind: str,
    options: Options,
    duration_s: float,
    profiler: Profiler | None = None,
) -> tuple[WrkResult, dict[int, WorkerShare]]:
    """One wrk run of the workload over keep-alive or fresh connections (optionally under py-spy).

    Also returns how many requests (and connections) each worker served, from the access log.
    """
    extra = workload.before_run(duration_s) if workload.before_run else []
    args = [workload.token or "-", CONNECTION_KINDS[kind], *workload.args, *extra]
    offset = server.log_size()
    if profiler:
        profiler.start()
    try:
        result = run_wrk(
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
    return result, server.shares_since(offset)


def pair(
    workload: Workload,
    by_name: dict[str, Workload],
    started: dict[str, servers.Gunicorn],
    kind: str,
    options: Options,
    measured: runs.Measured,
) -> report.Pairing | None:
    """Measure the workload's ceiling right before it: the machine is shared and its speed drifts,
    so each ratio compares two runs that saw the same conditions."""
    if workload.ceiling is None:
        return None
    if workload.ceiling == ARGON2:
        verify_s = argon2_verify_seconds()
        measured.verify_ms.append(verify_s * 1000)
        return report.Pairing(targets.argon2_ceiling_rps(servers.WORKERS, verify_s))
    ceiling = by_name[workload.ceiling]
    # As long as the workload's run: wrk counts only completed requests, so a shorter run loses a
    # larger share to the requests still in flight at its end (a 1 MiB write takes ~0.7 s here).
    result, shares = drive(ceiling, started[CEILING_SERVER], kind, options, options.duration_s)
    measured.add((ceiling.name, kind), result, shares)
    return report.Pairing(result.rps, result.p99_ms)


def run(options: Options) -> dict[str, Any]:
    """Run the standard benchmark, print the table and write JSON and PNG under bench/results/."""
    ensure_wrk()
    if options.worker_class:
        servers.check_worker_class(options.worker_class)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    load_before = os.getloadavg()
    measured = runs.Measured()
    try:
        threads_env = {"GUNICORN_THREADS": str(options.gunicorn_threads)} if options.gunicorn_threads else {}
        with bench_servers(work_dir, threads_env, worker_class=options.worker_class, with_redis=options.redis) as stack:
            started = stack.started
            engine = create_engine(stack.url)
            workloads, accounts = prepare(started["app"].base, engine, work_dir)
            check_read_ceiling(started[CEILING_SERVER].base, started["app"].base, accounts)
            workloads = select(workloads, options.only)
            by_name = {w.name: w for w in workloads}
            _note_peak_rss(measured, "set-up (sign-ups, listings checked)", started["app"])
            for workload in workloads:
                # The warm-up is each workload's first run: the peak it leaves is the one it raised.
                drive(workload, started[workload.server], "keep-alive", options, WARM_UP_SECONDS)
                if not workload.is_ceiling:
                    _note_peak_rss(measured, f"{workload.name} warm-up", started[workload.server])
            for run_index in range(options.runs):
                for workload in workloads:
                    if workload.is_ceiling:
                        continue
                    for kind in options.kinds:
                        pairing = pair(workload, by_name, started, kind, options, measured)
                        server = started[workload.server]
                        profiler = _profiler(options, run_index, kind, workload, server)
                        result, shares = drive(workload, server, kind, options, options.duration_s, profiler)
                        if profiler:
                            print(profiler.report(), flush=True)
                        key = (workload.name, kind)
                        measured.add(key, result, shares)
                        if pairing is not None:
                            measured.pairings.setdefault(key, []).append(pairing)
                        print(
                            runs.run_line(
                                run_index, options.runs, workload, kind, result, shares, servers.WORKERS, pairing
                            ),
                            flush=True,
                        )
            memory = {name: server.worker_rss_mib() for name, server in started.items()}
            peaks = {name: server.worker_peak_rss_mib() for name, server in started.items()}
            cache_bytes = started["app"].cache_bytes()
            redis_bytes = int(stack.redis.client().info("memory")["used_memory"]) if stack.redis else None
            engine.dispose()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    summaries = _summaries(workloads, measured, options)
    # The service's servers are judged; the ceiling's memory is shown for comparison.
    judged_peaks = {name: peaks[name] for name in ("app", "miss")}
    lines = report.checks(summaries, judged_peaks)
    runs_text = f"medians of {options.runs} run{'s' if options.runs != 1 else ''}"
    configuration = _configuration(options)
    document = {
        "mode": "standard",
        "label": options.label,
        "finished_at": datetime.now(UTC).isoformat(),
        "options": asdict(options),
        "configuration": configuration,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "workers": servers.WORKERS,
        "argon2_verify_ms_samples": [round(ms, 2) for ms in measured.verify_ms],
        "summaries": [asdict(s) for s in summaries],
        "runs": runs.runs_document(measured),
        "targets": lines,
        "worker_rss_mib": memory,
        "worker_peak_rss_mib": peaks,
        "worker_peak_rss_mib_after": measured.peak_rss_after,
        "filesystem_cache_bytes": cache_bytes,
        "redis_used_memory_bytes": redis_bytes,
        "cache_bound_bytes": CACHE_BOUND_BYTES,
    }
    stem = f"standard-{options.label or datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    report.write_json(RESULTS_DIR / f"{stem}.json", document)
    report.write_chart(
        RESULTS_DIR / f"{stem}.png",
        summaries,
        f"Ratio to each workload's own ceiling (same run), {runs_text}, keep-alive and fresh\n{configuration}; {stem}",
    )
    print()
    print(
        f"{configuration}; {options.connections} connections, {runs_text} of {options.duration_s:g} s; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(a shared machine: compare ratios, not absolute figures)"
    )
    print()
    print(report.format_table(summaries))
    print()
    print("Per-worker requests, each run (busiest worker first; conns = distinct client connections):")
    print("\n".join(runs.worker_lines(measured, servers.WORKERS)))
    print()
    print(report.format_checks(lines))
    print("Largest worker peak RSS (VmHWM) of the serving server after the set-up and each warm-up run:")
    print("\n".join(runs.peak_rss_lines(measured)))
    if measured.verify_ms:
        verify_ms = statistics.median(measured.verify_ms)
        print(
            f"argon2id verify: median {verify_ms:.1f} ms in-process over {len(measured.verify_ms)} measurements "
            f"-> ceiling {targets.argon2_ceiling_rps(servers.WORKERS, verify_ms / 1000):.1f} req/s "
            f"for {servers.WORKERS} workers"
        )
    for name, rss in memory.items():
        print(
            f"worker RSS ({name}): "
            + ", ".join(
                f"pid {pid}: {mib:.1f} MiB now, {peaks[name].get(pid, 0.0):.1f} MiB peak" for pid, mib in rss.items()
            )
            + ("" if name in judged_peaks else " (for comparison, not judged)")
        )
    if redis_bytes is not None:
        print(f"redis used_memory: {redis_bytes / 1024 / 1024:.2f} MiB")
    else:
        print(
            f"filesystem cache: {cache_bytes / 1024 / 1024:.2f} MiB "
            f"(bound: {CACHE_BOUND_BYTES / 1024 / 1024:.0f} MiB = entries x max entry bytes)"
        )
    print(f"results: {RESULTS_DIR / stem}.json and .png")
    return document


def select(workloads: list[Workload], only: tuple[str, ...]) -> list[Workload]:
    """The workloads whose name contains one of `only` (all when empty), and the ceilings they need."""
    if not only:
        return workloads
    chosen = [w for w in workloads if not w.is_ceiling and any(part in w.name for part in only)]
    needed = {w.ceiling for w in chosen}
    return [w for w in workloads if w.name in needed] + chosen


def _summaries(workloads: list[Workload], measured: runs.Measured, options: Options) -> list[report.Summary]:
    """Ceilings first, then the workloads as listed; keep-alive before fresh."""
    summaries = []
    for workload in workloads:
        for kind in CONNECTION_KINDS:
            key = (workload.name, kind)
            if key not in measured.results:
                continue
            summaries.append(
                report.summarize(
                    workload.name,
                    kind,
                    measured.results[key],
                    ceiling=workload.ceiling,
                    pairings=measured.pairings.get(key, []),
                    target=workload.target,
                )
            )
    return summaries


def _configuration(options: Options) -> str:
    """E.g. `gthread x 4 threads, filesystem cache` for titles and the table's header."""
    worker_class = options.worker_class or "gthread"
    threads_text = options.gunicorn_threads or "gunicorn.conf.py's"
    threads = f" x {threads_text} threads" if worker_class == "gthread" else ""
    cache = "REDIS_URL (redis cache)" if options.redis else "filesystem cache on /dev/shm"
    return f"{servers.WORKERS} {worker_class} workers{threads}, {cache}"


def _note_peak_rss(measured: runs.Measured, after: str, server: servers.Gunicorn) -> None:
    """Record the server's largest worker peak RSS so far (VmHWM only grows)."""
    peak = max(server.worker_peak_rss_mib().values(), default=0.0)
    measured.peak_rss_after[f"{after} ({server.name} server)"] = peak


def _profiler(
    options: Options, run_index: int, kind: str, workload: Workload, server: servers.Gunicorn
) -> Profiler | None:
    """py-spy on the server's workers during the workload's first keep-alive run, when asked for."""
    if not (options.profile and run_index == 0 and kind == "keep-alive"):
        return None
    path = RESULTS_DIR / f"profile-{_slug(workload.name)}.txt"
    return Profiler(server.worker_pids(), options.duration_s, path)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")
