"""`uv run python -m bench.stress_listing`: a worker's memory while one user's 1 GiB listing is served 4 times at once.

The issue: "One user with 200 posts of 1 MiB and 4 concurrent get_my_posts took a worker from 0.17
to 1.64 GB (0.78 GB afterwards)". Here one gunicorn worker (the shipped gunicorn.conf.py, with as
many threads as clients, so every listing shares its memory) on a throwaway MariaDB serves one
user's listing of --mib MiB of 1 MiB posts to --clients clients at once. Its RSS (VmRSS) is
sampled every 50 ms and printed: before (warmed up), peak, and after each round.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine

from bench import seed
from bench.servers import BENCH_SECRET, UNLIMITED, start_mariadb
from tests.support.api import LIST
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.net import free_port
from tests.support.posts import insert_posts
from tests.support.schema import create_schema

SAMPLE_SECONDS = 0.05
TIMEOUT = 600
READ_BYTES = 256 * 1024


@dataclass
class Download:
    """One client's listing: size, digest, time, or the error that ended it."""

    size: int = 0
    digest: str = ""
    seconds: float = 0.0
    head: bytes = b""
    tail: bytes = b""
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)


def download(url: str, token: str, start: threading.Barrier, into: Download) -> None:
    """GET the listing, hashing it as it arrives (never holding it)."""
    try:
        start.wait(timeout=TIMEOUT)
        began = time.monotonic()
        digest = hashlib.sha256()
        headers = {"Authorization": f"Bearer {token}"}
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=READ_BYTES):
                if not into.head:
                    into.head = chunk[:64]
                into.tail = (into.tail + chunk)[-64:]
                digest.update(chunk)
                into.size += len(chunk)
        into.digest = digest.hexdigest()
        into.seconds = time.monotonic() - began
    except Exception as error:  # reported in the table
        into.error = f"{type(error).__name__}: {error}"
    finally:
        into.done.set()


def one_round(live: LiveServer, pid: int, token: str, clients: int) -> tuple[float, list[Download]]:
    """Run `clients` listings at once; the worker's peak RSS (MiB) meanwhile, and the downloads."""
    start = threading.Barrier(clients + 1)
    downloads = [Download() for _ in range(clients)]
    for item in downloads:
        threading.Thread(target=download, args=(live.base + LIST, token, start, item), daemon=True).start()
    start.wait(timeout=TIMEOUT)
    peak = 0.0
    while not all(item.done.is_set() for item in downloads):
        peak = max(peak, live.worker_rss_mib()[pid])
        time.sleep(SAMPLE_SECONDS)
    return peak, downloads


def run(mib: int, clients: int, rounds: int) -> None:
    """Seed the listing, then measure `rounds` rounds of `clients` simultaneous listings."""
    work_dir = Path(tempfile.mkdtemp(prefix="stress-listing-"))
    mariadb = start_mariadb(work_dir)
    live: LiveServer | None = None
    try:
        url = mariadb.create_database("posts_stress_listing")
        create_schema(url)
        cache_dir = work_dir / "cache"
        cache_dir.mkdir()
        live = start_gunicorn(
            "wsgi:app",
            port=free_port(),
            workers=1,
            log_path=work_dir / "gunicorn.log",
            env={
                "APP_ENV": "production",
                "DATABASE_URL": url,
                "JWT_SECRET_KEY": BENCH_SECRET,
                "CACHE_DIR": str(cache_dir),
                "GUNICORN_THREADS": str(clients),
                "RATE_LIMIT_AUTH_PER_ADDRESS": UNLIMITED,
                "RATE_LIMIT_SIGN_IN_FAILURES": UNLIMITED,
            },
            extra_args=("-c", "gunicorn.conf.py"),
        )
        user_id, token = seed.sign_up(live.base, "big@bench.example.com")
        engine = create_engine(url)
        began = time.monotonic()
        insert_posts(engine, user_id, (f"{n:06d}".ljust(1024 * 1024, "x") for n in range(mib)))
        engine.dispose()
        print(f"seeded {mib} posts of 1 MiB for one user in {time.monotonic() - began:.0f}s")
        _, small = seed.sign_up(live.base, "small@bench.example.com")
        assert seed.get_status(live.base + LIST, small) == 200  # warm the worker: imports, pools
        [pid] = live.worker_pids()
        before = live.worker_rss_mib()[pid]
        print(f"worker {pid} RSS before: {before:.0f} MiB (one gunicorn worker, {clients} threads)")
        for number in range(1, rounds + 1):
            peak, downloads = one_round(live, pid, token, clients)
            time.sleep(1.0)
            after = live.worker_rss_mib()[pid]
            report(number, before, peak, after, downloads)
        print(f"worker alive: {live.worker_pids() == [pid]}")
    finally:
        if live is not None:
            live.stop()
        mariadb.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def report(number: int, before: float, peak: float, after: float, downloads: list[Download]) -> None:
    """Print one round's figures."""
    total = sum(item.size for item in downloads) / 2**20
    slowest = max(item.seconds for item in downloads) or 1.0
    complete = (
        len({item.digest for item in downloads}) == 1
        and all(not item.error for item in downloads)
        and all(item.head.startswith(b'[{"id":"') and item.tail.endswith(b'"}]') for item in downloads)
    )
    print(
        f"round {number}: {len(downloads)} listings of {downloads[0].size / 2**20:.0f} MiB at once, "
        f"{total:.0f} MiB in {slowest:.1f}s ({total / slowest:.0f} MiB/s); identical and complete: {complete}"
    )
    print(f"  worker RSS: before {before:.0f} MiB, peak {peak:.0f} MiB (+{peak - before:.0f}), after {after:.0f} MiB")
    for item in downloads:
        if item.error:
            print(f"  error: {item.error}")


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
