"""Stress scenarios (`python -m bench --stress NAME`) against our service on a throwaway MariaDB.

A scenario is a function taking the Context (servers, accounts, options) and returning a
Section of printed figures. To add one, write it in a module of this package and give it a
name in SCENARIOS.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine

from bench import harness
from bench.stress.clients import oversize, slow
from bench.stress.context import Context, Section, StressOptions
from bench.stress.listing import listing
from bench.stress.outage import outage
from tests.support.schema import create_schema

SCENARIOS: dict[str, Callable[[Context], Section]] = {
    "slow": slow,
    "oversize": oversize,
    "outage": outage,
    "listing": listing,
}


def run(names: list[str], options: StressOptions) -> list[Section]:
    """Start MariaDB and our service (shipped config, 2 workers), run each named scenario, print its section."""
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown stress scenario {unknown}; known: {', '.join(SCENARIOS)}")
    work_dir = Path(tempfile.mkdtemp(prefix="bench-stress-"))
    mariadb = harness.start_mariadb(work_dir)
    sections = []
    try:
        url = mariadb.create_database("stress")
        create_schema(url)
        engine = create_engine(url)
        env = {"DATABASE_URL": url}
        server = harness.start_server("stress", "wsgi:app", work_dir, env, gunicorn_args=options.gunicorn_args)
        try:
            ctx = Context(options, work_dir, mariadb, url, engine, server)
            for role in ("lister", "adder"):
                ctx.accounts[role] = harness.new_account(server.base, role)
            harness.add_posts(server.base, ctx.accounts["lister"], 20)
            harness.call(server.base, "GET", "/posts/get_my_posts", token=ctx.accounts["lister"].token)
            for name in names:
                print(f"\n== {name} ==", flush=True)
                section = SCENARIOS[name](ctx)
                sections.append(section)
                print(section.title)
                for line in section.lines:
                    print(f"  {line}", flush=True)
        finally:
            server.stop()
            engine.dispose()
    finally:
        mariadb.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    return sections
