"""`uv run python -m bench.stress`: hostile traffic against each gunicorn serving model, and their comparison.

Starts a throwaway MariaDB and one gunicorn per serving model, all with the shipped
gunicorn.conf.py (2 workers) and only the worker class changed on the command line:

| model   | worker                                             |
|---------|----------------------------------------------------|
| gthread | `-k gthread --threads 4`: the previous shipped one |
| gevent  | `-k gevent`: gunicorn's gevent worker, untuned     |
| serving | the shipped `serving.worker.Worker` (gevent, hardened) |
| sync    | `-k sync`                                          |

Measurements (`--only NAME`, repeatable; all by default), each printing its figures:

- `slow`: 1,000 slow connections kept open (5 % never finish a body, the rest trickle headers
  one byte a second; those the server closes are reopened) while /healthz and a cached
  get_my_posts are probed on fresh connections: connections held, when the server closed
  them, and the probes' p50/p99 and failures (a probe fails after 5 s).
- `oversize`: 8 keep-alive clients, 2,400 requests, every 50th an upload over 1 MiB (413):
  how many requests failed, and how many of those came right after a 413 on their connection.
- `hashing`: /healthz probed while wrk signs in over 16 keep-alive connections (argon2 on
  every request): does hashing stall the other requests of a worker?
- `throughput`: wrk, 16 keep-alive connections: cached get_my_posts, add-post, sign_in;
  the models interleaved in every run, medians and ratios to gthread.
- `balance`: five wrk runs of the cached listing per model, with each worker's share of the
  requests (access log pids) and the runs' spread around their median (goal: within 15 %).

- `outage`: MariaDB frozen (SIGSTOP) while 24 add-posts arrive at once, 3 rounds per model
  (bench.stress_outage): when the 503s came, /healthz and a cached listing meanwhile.
- `listing`: one user's 1 GiB listing (1 MiB posts) served to 4 clients at once by one worker
  per model (bench.stress_listing): the worker's RSS growth, and whether all four got it whole.

The summary table puts issue 9's figures (the service before this round) above each model's.
More measurements plug in through MEASUREMENTS: a function taking the Context (servers,
MariaDB, accounts, options) and returning a Section.

The machine is shared: every comparison runs the models back to back in the same round and
reports medians; absolute figures move with the machine's load, ratios much less.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from bench import hostile, report, seed, servers, stress_listing, stress_outage
from bench.accesslog import worker_shares
from bench.wrk import WrkResult, ensure_wrk, run_wrk
from tests.support.mariadb import MariaDBServer
from tests.support.schema import create_schema

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODELS = {
    "gthread": "-k gthread --threads 4",
    "gevent": "-k gevent",
    "serving": "",
    "sync": "-k sync",
}
BASELINE = "gthread"
HASHING_LOAD_S = 10.0


@dataclass(frozen=True)
class Options:
    """What to run and how hard."""

    models: tuple[str, ...] = tuple(MODELS)
    only: tuple[str, ...] = ()
    slow_connections: int = 1000
    slow_hold_s: float = 22.0
    probe_window_s: float = 8.0
    runs: int = 3
    duration_s: float = 5.0
    balance_runs: int = 5
    outage_writers: int = 24
    outage_rounds: int = 3
    listing_mib: int = 1024
    listing_clients: int = 4
    listing_rounds: int = 1
    label: str = ""


@dataclass
class Context:
    """Everything a measurement may use; the servers are up for the whole run."""

    options: Options
    work_dir: Path
    mariadb: MariaDBServer
    database_url: str
    engine: Engine
    servers: dict[str, servers.Gunicorn]
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass
class Section:
    """One measurement's figures: printed lines, per-model values for the summary table, raw data."""

    title: str
    lines: list[str]
    table: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> column -> cell
    data: dict[str, Any] = field(default_factory=dict)


def _ms(seconds: float) -> str:
    return "timeout" if math.isinf(seconds) else f"{seconds * 1000:.0f} ms"


def measure_slow(ctx: Context) -> Section:
    """1,000 slow connections per model; held, closed after, probes' p50/p99."""
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    count = ctx.options.slow_connections
    for model, server in ctx.servers.items():
        swarm = hostile.SlowSwarm(server.port, count, ctx.tokens["lister"])
        swarm.start()
        time.sleep(1.0)
        swarm.sample(True)
        until = time.monotonic() + ctx.options.probe_window_s
        health_thread, health = hostile.probe_in_background(server.port, "/healthz", {}, until)
        auth = {"Authorization": f"Bearer {ctx.tokens['lister']}"}
        listing_thread, listing = hostile.probe_in_background(server.port, hostile.LIST, auth, until)
        health_thread.join()
        listing_thread.join()
        swarm.sample(False)
        time.sleep(max(0.0, ctx.options.slow_hold_s - ctx.options.probe_window_s - 1.0))
        swarm_report = swarm.stop()
        header_life = swarm_report.lifetimes["headers"]
        body_life = swarm_report.lifetimes["body"]

        def closed(lifetimes: list[float], still_open: int) -> str:
            if not lifetimes:
                return f"never ({still_open} open after {ctx.options.slow_hold_s:.0f} s)"
            return f"p50 {statistics.median(lifetimes):.1f} s, max {max(lifetimes):.1f} s"

        header_closed = closed(header_life, swarm_report.still_open["headers"])
        body_closed = closed(body_life, swarm_report.still_open["body"])
        lines.append(
            f"{model:<8} slow open (mean) {swarm_report.mean_open:6.0f} of {count}  "
            f"/healthz p50 {_ms(health.p(50))} p99 {_ms(health.p(99))} "
            f"failed {health.failures}/{len(health.latencies)}  "
            f"cached listing p50 {_ms(listing.p(50))} p99 {_ms(listing.p(99))} "
            f"failed {listing.failures}/{len(listing.latencies)}"
        )
        lines.append(f"{'':<8} server closed trickling headers after {header_closed}; bodies after {body_closed}")
        table[model] = {
            "slow connections held": f"{swarm_report.mean_open:.0f} of {count}",
            "/healthz p99 (failed)": f"{_ms(health.p(99))} ({health.failures}/{len(health.latencies)})",
            "cached listing p99 (failed)": f"{_ms(listing.p(99))} ({listing.failures}/{len(listing.latencies)})",
            "slow headers closed after": header_closed,
            "unfinished bodies closed after": body_closed,
        }
        data[model] = {
            "mean_open": swarm_report.mean_open,
            "healthz_latencies_s": health.latencies,
            "listing_latencies_s": listing.latencies,
            "header_lifetimes_s": header_life,
            "body_lifetimes_s": body_life,
            "still_open": swarm_report.still_open,
            "connect_failures": swarm_report.connect_failures,
        }
        time.sleep(2.0)  # let the server settle before the next model
    return Section(f"Slow clients: {count} slow connections open", lines, table, data)


def measure_oversize(ctx: Context) -> Section:
    """A keep-alive load with 2 % uploads over the limit: requests lost after 413s."""
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    for model, server in ctx.servers.items():
        mixed = hostile.mixed_uploads(server.port, ctx.tokens["lister"])
        failed = mixed.oversize_failed + mixed.after_413_failed + mixed.other_failed
        lines.append(
            f"{model:<8} {mixed.requests} requests, {mixed.oversize} oversize, {mixed.refused_413} answered 413; "
            f"failed: {failed} ({failed / mixed.requests:.1%}) = {mixed.after_413_failed} of {mixed.after_413} "
            f"right after a 413 + {mixed.oversize_failed} oversize unanswered + {mixed.other_failed} other"
        )
        table[model] = {"lost after a 413": f"{mixed.after_413_failed} of {mixed.after_413}"}
        data[model] = vars(mixed)
    return Section("413s in a keep-alive load with 2 % oversize uploads", lines, table, data)


def _workloads(ctx: Context) -> list[tuple[str, str, str, list[str]]]:
    """(name, path, script, args) of the throughput workloads."""
    return [
        ("cached listing", hostile.LIST, "get", [ctx.tokens["lister"], "keep"]),
        ("add-post", hostile.ADD, "add_post", [ctx.tokens["adder"], "keep", "20"]),
        ("sign_in", "/api/v1/auth/sign_in", "sign_in", ["-", "keep", ctx.emails["signer"], seed.PASSWORD]),
    ]


def _wrk(server: servers.Gunicorn, path: str, script: str, args: list[str], duration_s: float) -> WrkResult:
    return run_wrk(server.base + path, script, args, duration_s=duration_s, connections=16, threads=2)


def _ok_per_second(result: WrkResult) -> float:
    """Responses below 400 per second (wrk's req/s counts refusals too)."""
    ok = result.requests - result.non_2xx
    return ok / result.duration_s if result.duration_s else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, all threads) the processes have used so far."""
    total = 0
    for pid in pids:
        # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure_throughput(ctx: Context) -> Section:
    """wrk, 16 keep-alive connections; models interleaved in every run; medians and ratios to gthread."""
    results: dict[tuple[str, str], list[WrkResult]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    per_cpu: dict[tuple[str, str], list[float]] = {}
    for run_index in range(ctx.options.runs):
        for name, path, script, args in _workloads(ctx):
            round_results: dict[str, WrkResult] = {}
            for model, server in ctx.servers.items():
                _wrk(server, path, script, args, 1.0)  # warm-up
                pids = server.worker_pids()
                cpu_before = cpu_seconds(pids)
                result = _wrk(server, path, script, args, ctx.options.duration_s)
                cpu = cpu_seconds(pids) - cpu_before
                round_results[model] = result
                results.setdefault((name, model), []).append(result)
                ok = result.requests - result.non_2xx
                per_cpu.setdefault((name, model), []).append(ok / cpu if cpu else math.nan)
                print(
                    f"  run {run_index + 1}/{ctx.options.runs} {name:<15} {model:<8} {result.rps:8.0f} req/s "
                    f"p50 {result.p50_ms:7.1f} ms p99 {result.p99_ms:8.1f} ms "
                    f"non-2xx {result.non_2xx} socket errors {result.socket_errors}  "
                    f"workers' CPU {cpu:.1f} s ({ok / cpu if cpu else math.nan:,.0f} 2xx per CPU-s)",
                    flush=True,
                )
                if name == "add-post":
                    seed.delete_posts_of(ctx.engine, ctx.ids["adder"])
            base = round_results.get(BASELINE)
            for model, result in round_results.items():
                if base and _ok_per_second(base):
                    ratios.setdefault((name, model), []).append(_ok_per_second(result) / _ok_per_second(base))
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    for (name, model), runs in results.items():
        summary = report.summarize(name, "keep-alive", runs)
        ratio = statistics.median(ratios[(name, model)]) if (name, model) in ratios else math.nan
        efficiency = statistics.median(per_cpu[(name, model)])
        ok_rps = statistics.median(_ok_per_second(result) for result in runs)
        errors = summary.non_2xx + summary.socket_errors
        lines.append(
            f"{name:<15} {model:<8} {ok_rps:8.0f} 2xx/s (x{ratio:.2f} of {BASELINE})  "
            f"p50 {summary.p50_ms:7.1f} ms  p99 {summary.p99_ms:8.1f} ms  errors {errors}  "
            f"{efficiency:,.0f} 2xx per worker CPU-s"
        )
        cell = f"{ok_rps:,.0f}/s, p99 {summary.p99_ms:.0f} ms, {efficiency:,.0f}/CPU-s"
        table.setdefault(model, {})[f"{name}: 2xx/s, p99, 2xx per CPU-s"] = cell + (
            f", {errors} errors" if errors else ""
        )
        data[f"{name}/{model}"] = {
            "ok_per_second": ok_rps,
            "p50_ms": summary.p50_ms,
            "p99_ms": summary.p99_ms,
            "ratio_to_baseline": ratio,
            "ok_per_cpu_second": per_cpu[(name, model)],
            "errors": errors,
            "runs": [vars(r) for r in runs],
        }
    return Section(f"Throughput: wrk, 16 keep-alive connections, median of {ctx.options.runs} runs", lines, table, data)


@dataclass(frozen=True)
class _BalanceRun:
    rps: float
    per_cpu_second: float
    requests_per_worker: list[int]


def _spread(values: list[float]) -> float:
    """The largest distance of a value from the median, as a fraction of the median."""
    median = statistics.median(values)
    return max(abs(value / median - 1) for value in values) if median else math.inf


def measure_balance(ctx: Context) -> Section:
    """Five runs of the cached listing per model: each worker's share, and the runs' spread.

    The spread of req/s is the goal (within 15 %); on a shared machine it also moves with the
    load of others, so the spread of requests per worker CPU-second is printed beside it.
    """
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    runs: dict[str, list[_BalanceRun]] = {model: [] for model in ctx.servers}
    name, path, script, args = _workloads(ctx)[0]
    for _ in range(ctx.options.balance_runs):
        for model, server in ctx.servers.items():
            offset = server.log_path.stat().st_size
            pids = server.worker_pids()
            cpu_before = cpu_seconds(pids)
            result = _wrk(server, path, script, args, ctx.options.duration_s)
            cpu = cpu_seconds(pids) - cpu_before
            with server.log_path.open("rb") as log:
                log.seek(offset)
                served = worker_shares(log.read().decode(errors="replace"))
            shares = sorted((served[pid].requests if pid in served else 0 for pid in pids), reverse=True)
            runs[model].append(_BalanceRun(result.rps, result.requests / cpu if cpu else math.nan, shares))
    for model, model_runs in runs.items():
        spread = _spread([run.rps for run in model_runs])
        cpu_spread = _spread([run.per_cpu_second for run in model_runs])
        per_run = ", ".join(f"{run.rps:,.0f} req/s {_shares(run.requests_per_worker)}" for run in model_runs)
        verdict = "within" if spread <= 0.15 else "outside"
        lines.append(f"{model:<8} req/s spread ±{spread:.0%} ({verdict} ±15 %), per CPU-s ±{cpu_spread:.0%}: {per_run}")
        worst = max(run.requests_per_worker[0] / (sum(run.requests_per_worker) or 1) for run in model_runs)
        table[model] = {
            "5 runs: req/s spread (per CPU-s); busiest worker's share": (
                f"±{spread:.0%} (±{cpu_spread:.0%}); at most {worst:.0%}"
            )
        }
        data[model] = [vars(run) for run in model_runs]
    return Section(f"Balance: {name}, 16 keep-alive connections, requests per worker", lines, table, data)


def _shares(shares: list[int]) -> str:
    total = sum(shares) or 1
    return "[" + "/".join(f"{count * 100 // total}%" for count in shares) + "]"


def measure_hashing(ctx: Context) -> Section:
    """/healthz probed while 16 keep-alive connections sign in (argon2 on every request)."""
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    _name, path, script, args = _workloads(ctx)[2]
    for model, server in ctx.servers.items():
        results: list[WrkResult] = []

        def sign_in_load(server: servers.Gunicorn = server, results: list[WrkResult] = results) -> None:
            results.append(_wrk(server, path, script, args, HASHING_LOAD_S))

        load = threading.Thread(target=sign_in_load, name="sign-in load")
        load.start()
        time.sleep(1.5)  # the load is under way
        health = hostile.probe(server.port, "/healthz", {}, time.monotonic() + HASHING_LOAD_S - 3.0)
        load.join()
        sign_in = results[0]
        lines.append(
            f"{model:<8} sign_in {_ok_per_second(sign_in):5.1f} 2xx/s (non-2xx {sign_in.non_2xx})  "
            f"/healthz meanwhile p50 {_ms(health.p(50))} p99 {_ms(health.p(99))} "
            f"({len(health.latencies)} probes, {health.failures} failed)"
        )
        table[model] = {
            "while 16 sign in: sign_in 2xx/s; /healthz p50 / p99": (
                f"{_ok_per_second(sign_in):.1f}; {_ms(health.p(50))} / {_ms(health.p(99))}"
            )
        }
        data[model] = {"sign_in": vars(sign_in), "healthz_latencies_s": health.latencies}
    return Section("Password hashing: /healthz while 16 keep-alive connections sign in", lines, table, data)


def measure_outage(ctx: Context) -> Section:
    """MariaDB frozen (SIGSTOP) under concurrent add-posts, per model: 503 latencies and /healthz meanwhile."""
    options = stress_outage.Options(writers=ctx.options.outage_writers, rounds=ctx.options.outage_rounds)
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    for model in ctx.options.models:
        figures = stress_outage.measure(
            model, ctx.mariadb, ctx.work_dir, options, gunicorn_args=tuple(MODELS[model].split())
        )
        refused = sorted(figures.refused)
        other = sum(figures.other.values())
        spread = f"{refused[0]:.2f}-{refused[-1]:.2f} s" if refused else "none"
        lines.append(
            f"{model:<8} 503 + Retry-After {len(refused)} (other answers {other}): {spread}, "
            f"median {statistics.median(refused) if refused else math.inf:.2f} s, "
            f"p99 {stress_outage.p99(refused):.2f} s; /healthz p99 {_ms(stress_outage.p99(figures.health))} "
            f"(same burst, database up: {_ms(stress_outage.p99(figures.health_healthy))}); "
            f"cached listing p99 {_ms(stress_outage.p99(figures.listing))}"
        )
        table[model] = {
            f"503s, frozen DB, {options.writers} writes": f"{spread} ({other} not 503)",
            "/healthz p99, frozen DB": _ms(stress_outage.p99(figures.health)),
        }
        data[model] = {key: value for key, value in vars(figures).items() if isinstance(value, list)}
    title = f"Frozen database: {options.writers} concurrent add-posts, MariaDB SIGSTOPped, x {options.rounds} rounds"
    return Section(title, lines, table, data)


def measure_listing(ctx: Context) -> Section:
    """One worker per model serving one user's 1 GiB listing to 4 clients at once: its RSS growth."""
    o = ctx.options
    any_server = next(iter(ctx.servers.values()))
    email = stress_listing.seed_listing(any_server.base, ctx.database_url, o.listing_mib)
    lines: list[str] = []
    table: dict[str, dict[str, str]] = {}
    data: dict[str, Any] = {}
    for model in o.models:
        rounds = stress_listing.measure(
            ctx.database_url, email, ctx.work_dir, o.listing_clients, o.listing_rounds, tuple(MODELS[model].split())
        )
        growth = max(result.peak - result.before for result in rounds)
        complete = all(result.complete for result in rounds)
        seconds = max(item.seconds for result in rounds for item in result.downloads)
        lines.append(
            f"{model:<8} worker RSS before {rounds[0].before:.0f} MiB, peak +{growth:.0f} MiB, "
            f"after {rounds[-1].after:.0f} MiB; slowest listing {seconds:.0f} s; identical and complete: {complete}"
        )
        table[model] = {f"worker RSS growth, {o.listing_clients} x {o.listing_mib} MiB listings": f"+{growth:.0f} MiB"}
        data[model] = [{"before": r.before, "peak": r.peak, "after": r.after, "complete": r.complete} for r in rounds]
    title = f"Huge listings: {o.listing_clients} clients list one user's {o.listing_mib} MiB at once, one worker"
    return Section(title, lines, table, data)


MEASUREMENTS: dict[str, Callable[[Context], Section]] = {
    "slow": measure_slow,
    "oversize": measure_oversize,
    "outage": measure_outage,
    "listing": measure_listing,
    "hashing": measure_hashing,
    "throughput": measure_throughput,
    "balance": measure_balance,
}


@contextmanager
def stress_context(options: Options, work_dir: Path) -> Iterator[Context]:
    """MariaDB, one gunicorn per model on one database, the accounts; all stopped on exit."""
    with ExitStack() as stack:
        mariadb = servers.start_mariadb(work_dir)
        stack.callback(mariadb.close)
        url = mariadb.create_database("stress")
        create_schema(url)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        started: dict[str, servers.Gunicorn] = {}
        for model in options.models:
            env = {"DATABASE_URL": url, **({"GUNICORN_CMD_ARGS": MODELS[model]} if MODELS[model] else {})}
            started[model] = servers.start_gunicorn_server(model, "wsgi:app", work_dir, **env)
            stack.callback(started[model].stop)
        ctx = Context(options, work_dir, mariadb, url, engine, started)
        any_server = next(iter(started.values()))
        for role in ("lister", "adder", "signer"):
            email = f"{role}-{int(time.time() * 1000)}@stress.example.com"
            user_id, token = seed.sign_up(any_server.base, email)
            ctx.emails[role] = email
            ctx.tokens[role] = token
            ctx.ids[role] = user_id
        seed.insert_posts(engine, seed.post_rows(ctx.ids["lister"], 20))
        for server in started.values():  # warm every model's listing cache
            seed.get_status(server.base + hostile.LIST, ctx.tokens["lister"])
        yield ctx


# What issue 9 reported for the service before this round (gthread, 2 workers x 4 threads).
BEFORE = "before (issue 9)"
BEFORE_CELLS = {
    "slow connections held": "8 took every slot",
    "/healthz p99 (failed)": "timed out for 120 s",
    "lost after a 413": "83 of 4,962 requests (1.7 %)",
    "503s, frozen DB, 24 writes": "3.0-15.3 s (median 6.1)",
    "/healthz p99, frozen DB": "11.8 s",
    "worker RSS growth, 4 x 1024 MiB listings": "+1,470 MiB at 200 MiB",
}


def summary_table(sections: list[Section], models: tuple[str, ...]) -> str:
    """The docs/serving.md table: a row per model (and issue 9), the key figure of each measurement as columns."""
    columns: list[str] = []
    for section in sections:
        for cells in section.table.values():
            columns.extend(column for column in cells if column not in columns)
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines.append(f"| {BEFORE} | " + " | ".join(BEFORE_CELLS.get(column, "") for column in columns) + " |")
    for model in models:
        cells = {k: v for section in sections for k, v in section.table.get(model, {}).items()}
        lines.append(f"| {model} | " + " | ".join(cells.get(column, "") for column in columns) + " |")
    return "\n".join(lines)


def run(options: Options) -> dict[str, Any]:
    """Run the chosen measurements, print each section and the summary table, write JSON."""
    ensure_wrk()
    chosen = [name for name in MEASUREMENTS if not options.only or name in options.only]
    work_dir = Path(tempfile.mkdtemp(prefix="stress-"))
    sections: list[Section] = []
    try:
        with stress_context(options, work_dir) as ctx:
            for name in chosen:
                print(f"\n== {name} ==", flush=True)
                section = MEASUREMENTS[name](ctx)
                sections.append(section)
                print(f"\n{section.title}", flush=True)
                for line in section.lines:
                    print(f"  {line}", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    table = summary_table(sections, options.models)
    print("\nSummary (docs/serving.md table; the machine was shared, figures move with its load):\n")
    print(table)
    document = {
        "mode": "stress",
        "label": options.label,
        "finished_at": datetime.now(UTC).isoformat(),
        "options": vars(options),
        "sections": [{"title": s.title, "lines": s.lines, "table": s.table, "data": s.data} for s in sections],
        "summary_table": table,
    }
    stem = f"stress-{options.label or datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    report.write_json(RESULTS_DIR / f"{stem}.json", document)
    print(f"\nresults: {RESULTS_DIR / stem}.json")
    return document


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.stress", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], choices=list(MEASUREMENTS), help="run only these")
    parser.add_argument("--model", action="append", default=[], choices=list(MODELS), help="serve only with these")
    parser.add_argument("--slow-connections", type=int, default=1000, help="slow connections held open (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per workload (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--outage-rounds", type=int, default=3, help="database freezes per model (default 3)")
    parser.add_argument("--listing-mib", type=int, default=1024, help="size of the huge listing in MiB (default 1024)")
    parser.add_argument("--label", default="", help="name of the results file (default: a timestamp)")
    options = parser.parse_args()
    run(
        Options(
            models=tuple(options.model) or tuple(MODELS),
            only=tuple(options.only),
            slow_connections=options.slow_connections,
            runs=options.runs,
            duration_s=options.duration,
            outage_rounds=options.outage_rounds,
            listing_mib=options.listing_mib,
            label=options.label,
        )
    )


if __name__ == "__main__":
    main()
