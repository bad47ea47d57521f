"""`listing`: one worker's memory while one user's 1 GiB listing (1 MiB posts) is served to 4 clients at once.

A gunicorn of its own with one worker (the shipped config otherwise), so every listing shares
one process's memory; its RSS is sampled every 50 ms while the clients read.
"""

from __future__ import annotations

import time

from bench import harness
from bench.stress.context import Context, Section
from tests.support.downloads import list_at_once
from tests.support.posts import insert_posts

TIMEOUT = 600


def listing(ctx: Context) -> Section:
    """Seed the listing straight into the database, then serve it to every client at once from one worker."""
    o = ctx.options
    owner = harness.new_account(ctx.server.base, "big")
    began = time.monotonic()
    insert_posts(ctx.engine, owner.id, (f"{n:06d}".ljust(1024 * 1024, "x") for n in range(o.listing_mib)))
    seeded = time.monotonic() - began
    env = {"DATABASE_URL": ctx.database_url}
    live = harness.start_server("listing", "wsgi:app", ctx.work_dir, env, workers=1, gunicorn_args=o.gunicorn_args)
    try:
        small = harness.new_account(live.base, "small")
        harness.call(live.base, "GET", "/posts/get_my_posts", token=small.token)  # warm: imports, pools
        [pid] = live.server.worker_pids()
        before = live.server.worker_rss_mib()[pid]
        peak, downloads = list_at_once(live.server, pid, owner.token, o.listing_clients, TIMEOUT)
        time.sleep(1.0)
        after = live.server.worker_rss_mib()[pid]
        if live.server.worker_pids() != [pid]:
            raise RuntimeError("the worker died while serving the listings")
    finally:
        live.stop()
    complete = (
        len({d.digest for d in downloads}) == 1
        and all(d.error is None and d.status == 200 for d in downloads)
        and all(d.head.startswith(b'[{"id":"') and d.tail.endswith(b'"}]') for d in downloads)
    )
    slowest = max(d.seconds for d in downloads) or 1.0
    total_mib = sum(d.size for d in downloads) / 2**20
    return Section(
        f"listing: {o.listing_clients} clients list one user's {o.listing_mib} MiB at once, one worker",
        [
            f"seeded {o.listing_mib} posts of 1 MiB in {seeded:.0f} s",
            f"worker RSS before {before:.0f} MiB, peak {peak:.0f} MiB (+{peak - before:.0f}), after {after:.0f} MiB",
            f"{total_mib:.0f} MiB in {slowest:.1f} s ({total_mib / slowest:.0f} MiB/s)",
            f"every listing identical and complete: {complete}",
        ],
    )
