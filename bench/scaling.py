"""Scaling mode: posts grow to 1,000,000 rows; add-post and a small miss stay flat; a miss is linear in own posts."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine, create_engine, text

from bench import report, seed
from bench.standard import RESULTS_DIR, bench_servers
from bench.workloads import ADD, LIST, Accounts
from bench.wrk import WrkResult, ensure_wrk, run_wrk

TABLE_SIZES = (0, 250_000, 500_000, 1_000_000)
OWN_COUNTS = (10, 100, 1_000, 10_000)
FILLER_USERS = 10_000
FILLER_TEXT = "filler post " * 4
GROW_CHUNK = 25_000
OWN_COUNT_CONNECTIONS = 2


@dataclass(frozen=True)
class Options:
    """Duration of each wrk run and the results' name."""

    duration_s: float = 3.0
    connections: int = 16
    threads: int = 2
    label: str = ""


def selects(engine: Engine) -> int:
    """MariaDB's global count of SELECT statements so far (deltas give SELECTs per request)."""
    with engine.connect() as connection:
        value = connection.execute(text("SHOW GLOBAL STATUS LIKE 'Com_select'")).one()[1]
    return int(value)


def post_count(engine: Engine) -> int:
    """Rows in the posts table."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT COUNT(*) FROM posts")).scalar_one())


def grow(engine: Engine, filler: list[uuid.UUID], target: int) -> None:
    """Insert filler posts, spread over the filler users, until the table holds `target` rows."""
    missing = target - post_count(engine)
    if missing <= 0:
        return
    with click.progressbar(length=missing, label=f"posts -> {target:,}") as bar:
        done = 0
        while done < missing:
            size = min(GROW_CHUNK, missing - done)
            rows = (next(seed.post_rows(filler[(done + index) % len(filler)], 1, FILLER_TEXT)) for index in range(size))
            seed.insert_posts(engine, rows)
            done += size
            bar.update(size)


def selects_per_listing(engine: Engine, url: str, token: str, requests: int = 3) -> float:
    """SELECT statements MariaDB ran per get_my_posts, counted over a few sequential requests (exact, no overlap)."""
    before = selects(engine)
    for _ in range(requests):
        seed.get_status(url, token)
    return (selects(engine) - before) / requests


def explain_listing(engine: Engine, user_id: uuid.UUID) -> dict[str, Any]:
    """MariaDB's plan for the listing query: the index it uses and the rows it expects to read."""
    with engine.connect() as connection:
        row = connection.execute(
            text("EXPLAIN SELECT id, text, created_at FROM posts WHERE user_id = :user_id ORDER BY seq DESC"),
            {"user_id": user_id.hex},
        ).one()
    plan = dict(row._mapping)
    return {"key": plan.get("key"), "rows": plan.get("rows"), "extra": plan.get("Extra")}


def measure(url: str, script: str, token: str, args: list[str], options: Options, connections: int) -> dict[str, Any]:
    """One keep-alive wrk run."""
    result: WrkResult = run_wrk(
        url,
        script,
        [token, "keep", *args],
        duration_s=options.duration_s,
        connections=connections,
        threads=options.threads,
    )
    return {**asdict(result), "rps": round(result.rps, 1)}


def run(options: Options) -> dict[str, Any]:
    """Run the scaling benchmark, print both tables and write JSON under bench/results/."""
    ensure_wrk()
    work_dir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    growth: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []
    try:
        with bench_servers(work_dir) as stack:
            started = stack.started
            engine = create_engine(stack.url)
            app, miss = started["app"], started["miss"]
            accounts = Accounts()
            for role in ("small", "adder"):
                accounts.make(app.base, role)
            seed.insert_posts(engine, seed.post_rows(accounts.ids["small"], 20))
            filler = seed.insert_users(engine, FILLER_USERS, uuid.uuid4().hex[:6])
            for size in TABLE_SIZES:
                grow(engine, filler, size)
                rows = post_count(engine)
                add = measure(
                    app.base + ADD, "add_post", accounts.tokens["adder"], ["20"], options, options.connections
                )
                seed.delete_posts_of(engine, accounts.ids["adder"])
                listing = measure(miss.base + LIST, "get", accounts.tokens["small"], [], options, options.connections)
                plan = explain_listing(engine, accounts.ids["small"])
                growth.append({"posts_in_table": rows, "add_post": add, "miss_20_posts": listing, "listing_plan": plan})
                print(
                    f"{rows:>9,} rows: add-post {add['rps']:>7,.1f} req/s (p50 {add['p50_ms']:.2f} ms), "
                    f"miss (20 posts) {listing['rps']:>7,.1f} req/s (p50 {listing['p50_ms']:.2f} ms); "
                    f"listing plan: index {plan['key']}, ~{plan['rows']} rows read",
                    flush=True,
                )
            for count in OWN_COUNTS:
                accounts.make(app.base, f"own{count}")
                seed.insert_posts(engine, seed.post_rows(accounts.ids[f"own{count}"], count))
                token = accounts.tokens[f"own{count}"]
                per_request = selects_per_listing(engine, miss.base + LIST, token)
                # Two connections, so latency is mostly service time rather than queueing.
                listing = measure(miss.base + LIST, "get", token, [], options, OWN_COUNT_CONNECTIONS)
                posts_per_s = listing["rps"] * count
                own.append(
                    {
                        "own_posts": count,
                        "miss": listing,
                        "posts_served_per_s": round(posts_per_s),
                        "p50_us_per_post": round(listing["p50_ms"] * 1000 / count, 2),
                        "selects_per_request": per_request,
                    }
                )
                print(
                    f"own posts {count:>6,}: miss {listing['rps']:>8,.1f} req/s, p50 {listing['p50_ms']:8.2f} ms, "
                    f"{posts_per_s:>9,.0f} posts/s, {per_request:.0f} SELECT/request",
                    flush=True,
                )
            engine.dispose()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    document = {
        "mode": "scaling",
        "label": options.label,
        "finished_at": datetime.now(UTC).isoformat(),
        "options": asdict(options),
        "table_growth": growth,
        "own_post_count": own,
    }
    stem = f"scaling-{options.label or datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    report.write_json(RESULTS_DIR / f"{stem}.json", document)
    report.write_scaling_chart(RESULTS_DIR / f"{stem}.png", growth, own)
    print(f"results: {RESULTS_DIR / stem}.json and .png")
    return document
