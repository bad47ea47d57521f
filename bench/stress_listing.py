"""`uv run python -m bench.stress_listing`: a worker's memory while one user's 1 GiB listing is served 4 times at once.

The issue: "One user with 200 posts of 1 MiB and 4 concurrent get_my_posts took a worker from 0.17
to 1.64 GB (0.78 GB afterwards)". Here one gunicorn worker (the shipped gunicorn.conf.py: the
gevent worker, so every listing shares one process's memory) on a throwaway MariaDB serves one
user's listing of --mib MiB of 1 MiB posts to --clients clients at once. Its RSS (VmRSS) is
sampled every 50 ms and printed: before (warmed up), peak, and after each round.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine

from bench import seed
from bench.servers import BENCH_SECRET, UNLIMITED, start_mariadb
from tests.support.api import LIST
from tests.support.downloads import Download, list_at_once
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.net import free_port
from tests.support.posts import insert_posts
from tests.support.schema import create_schema

TIMEOUT = 600


@dataclass
class Round:
    """One round of simultaneous listings: the worker's RSS (MiB) and what the clients got."""

    before: float
    peak: float
    after: float
    downloads: list[Download]

    @property
    def complete(self) -> bool:
        """Every client got the same, whole, well-formed listing."""
        items = self.downloads
        return (
            len({item.digest for item in items}) == 1
            and all(item.error is None and item.status == 200 for item in items)
            and all(item.head.startswith(b'[{"id":"') and item.tail.endswith(b'"}]') for item in items)
        )


def seed_listing(base: str, url: str, mib: int) -> str:
    """Sign up one user (through the server at `base`) with `mib` posts of 1 MiB in `url`; their email."""
    engine = create_engine(url)
    try:
        email = f"big-{time.time_ns()}@bench.example.com"
        user_id, _ = seed.sign_up(base, email)
        began = time.monotonic()
        insert_posts(engine, user_id, (f"{n:06d}".ljust(1024 * 1024, "x") for n in range(mib)))
        print(f"seeded {mib} posts of 1 MiB for one user in {time.monotonic() - began:.0f}s", flush=True)
        return email
    finally:
        engine.dispose()


def seed_listing_through_a_server(url: str, work_dir: Path, mib: int) -> str:
    """seed_listing with a gunicorn of its own for the sign-up."""
    live = _start(url, work_dir, ())
    try:
        return seed_listing(live.base, url, mib)
    finally:
        live.stop()


def _start(url: str, work_dir: Path, gunicorn_args: tuple[str, ...]) -> LiveServer:
    """One gunicorn worker (the shipped gunicorn.conf.py, plus `gunicorn_args`) on the database at `url`."""
    cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=work_dir))
    return start_gunicorn(
        "wsgi:app",
        port=free_port(),
        workers=1,
        log_path=work_dir / f"gunicorn-listing-{time.time_ns()}.log",
        env={
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "JWT_SECRET_KEY": BENCH_SECRET,
            "CACHE_DIR": str(cache_dir),
            "RATE_LIMIT_AUTH_PER_ADDRESS": UNLIMITED,
            "RATE_LIMIT_SIGN_IN_FAILURES": UNLIMITED,
        },
        extra_args=("-c", "gunicorn.conf.py", *gunicorn_args),
    )


def measure(
    url: str, email: str, work_dir: Path, clients: int, rounds: int, gunicorn_args: tuple[str, ...] = ()
) -> list[Round]:
    """Serve the seeded user's listing to `clients` clients at once from one worker, `rounds` times."""
    live = _start(url, work_dir, gunicorn_args)
    try:
        token = seed.sign_in(live.base, email)
        _, small = seed.sign_up(live.base, f"small-{time.time_ns()}@bench.example.com")
        assert seed.get_status(live.base + LIST, small) == 200  # warm the worker: imports, pools
        [pid] = live.worker_pids()
        before = live.worker_rss_mib()[pid]
        results = []
        for _ in range(rounds):
            peak, downloads = list_at_once(live, pid, token, clients, TIMEOUT)
            time.sleep(1.0)
            results.append(Round(before, peak, live.worker_rss_mib()[pid], downloads))
        if live.worker_pids() != [pid]:
            raise RuntimeError("the worker died while serving the listings")
        return results
    finally:
        live.stop()


def run(mib: int, clients: int, rounds: int) -> None:
    """Seed the listing, then measure `rounds` rounds of `clients` simultaneous listings."""
    work_dir = Path(tempfile.mkdtemp(prefix="stress-listing-"))
    mariadb = start_mariadb(work_dir)
    try:
        url = mariadb.create_database("posts_stress_listing")
        create_schema(url)
        email = seed_listing_through_a_server(url, work_dir, mib)
        for number, result in enumerate(measure(url, email, work_dir, clients, rounds), start=1):
            report(number, result)
    finally:
        mariadb.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def report(number: int, result: Round) -> None:
    """Print one round's figures."""
    downloads = result.downloads
    total = sum(item.size for item in downloads) / 2**20
    slowest = max(item.seconds for item in downloads) or 1.0
    print(
        f"round {number}: {len(downloads)} listings of {downloads[0].size / 2**20:.0f} MiB at once, "
        f"{total:.0f} MiB in {slowest:.1f}s ({total / slowest:.0f} MiB/s); identical and complete: {result.complete}"
    )
    growth = result.peak - result.before
    print(
        f"  worker RSS: before {result.before:.0f} MiB, peak {result.peak:.0f} MiB (+{growth:.0f}), "
        f"after {result.after:.0f} MiB"
    )
    for item in downloads:
        if item.error is not None or item.status != 200:
            print(f"  failed: status {item.status}, {item.error!r}")


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.stress_listing", description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="size of the listing: posts of 1 MiB (default 1024)")
    parser.add_argument("--clients", type=int, default=4, help="simultaneous listings (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of simultaneous listings (default 2)")
    options = parser.parse_args()
    run(options.mib, options.clients, options.rounds)


if __name__ == "__main__":
    main()
