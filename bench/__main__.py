"""`uv run --group bench python -m bench [--peer URL] [--redis] [--users N,...] [--stress NAME]`: the entry point."""

from __future__ import annotations

import argparse
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench import harness, scale, seed, standard, stress
from bench.stress.context import StressOptions
from bench.workloads import Wrk


def _run_options(options: argparse.Namespace) -> dict[str, Any]:
    """The options the standard and the scale run share, as their Options dataclasses name them."""
    return {
        "wrk": Wrk(options.duration, options.connections, options.threads),
        "pairs": options.pairs,
        "peer": options.peer,
        "redis": options.redis,
        "mariadb": options.mariadb,
        "only": tuple(options.only),
        "gunicorn_args": options.gunicorn_args,
        "profile": options.profile,
        "label": options.label,
    }


def serve_database() -> None:
    """Start a throwaway MariaDB with an empty database `original` for a peer; print its URL; wait for Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix="bench-db-") as work:
        mariadb = harness.start_mariadb(Path(work))
        try:
            mariadb.create_database("original")
            print(f"MariaDB: mysql+pymysql://root@127.0.0.1:{mariadb.port} (database `original` is empty)")
            print(f"  the bench: --mariadb mysql+pymysql://root@127.0.0.1:{mariadb.port}")
            print(f"  the peer:  mysql+aiomysql://root@127.0.0.1:{mariadb.port}/original?charset=utf8mb4")
            print("Ctrl-C (or SIGTERM) stops it and deletes its files.", flush=True)
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait, not to a handler
            signal.sigwait(stop)
        finally:
            mariadb.close()


def _users(text: str) -> tuple[int, ...]:
    try:
        return scale.parse_users(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main() -> None:
    """Parse the command line and run the standard workloads, a stress scenario, or a database for a peer."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--peer", metavar="URL", help="also run every workload against this server, A B A B")
    parser.add_argument("--redis", action="store_true", help="our service gets REDIS_URL (a throwaway redis-server)")
    parser.add_argument("--pairs", type=int, default=3, help="runs per workload and server; medians (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--only", action="append", default=[], help="only workloads whose name contains this")
    parser.add_argument("--profile", action="store_true", help="py-spy our workers in each workload's first run")
    parser.add_argument("--gunicorn-args", default="", help="extra gunicorn flags for our servers, e.g. '-k sync'")
    parser.add_argument("--label", default="", help="name of the results file (default: a timestamp)")
    parser.add_argument("--mariadb", metavar="URL", help="use this MariaDB server (e.g. from --db-only), not a new one")
    parser.add_argument("--db-only", action="store_true", help="only start a MariaDB for a peer and wait")
    parser.add_argument(
        "--users",
        metavar="N[,N...]",
        type=_users,
        help="the scale run: every request as a random one of the first N seeded accounts (e.g. 1,100,1000,20000)",
    )
    parser.add_argument("--peer-db", metavar="URL", help="with --users and --peer: the peer's database, to seed")
    parser.add_argument("--peer-secret", default=seed.PEER_SECRET, help="with --users: the peer's SECRET_KEY")
    parser.add_argument("--accounts", type=int, default=seed.ACCOUNTS, help="with --users: accounts to seed (20000)")
    parser.add_argument("--reseed", action="store_true", help="with --users: seed even if the data is already there")
    parser.add_argument(
        "--buffer-pool-mib", type=int, default=scale.BUFFER_POOL_MIB, help="with --users: grow InnoDB's pool to this"
    )
    names = ", ".join(stress.SCENARIOS)
    parser.add_argument("--stress", action="append", default=[], metavar="NAME", help=f"{names}, or all")
    parser.add_argument("--slow-connections", type=int, default=1000, help="for --stress slow (default 1000)")
    parser.add_argument("--outage-rounds", type=int, default=3, help="for --stress outage (default 3)")
    parser.add_argument("--listing-mib", type=int, default=1024, help="for --stress listing (default 1024)")
    options = parser.parse_args()
    if options.db_only:
        serve_database()
    elif options.users:
        scale.run(
            scale.ScaleOptions(
                **_run_options(options),
                users=options.users,
                peer_db=options.peer_db,
                peer_secret=options.peer_secret,
                accounts=options.accounts,
                reseed=options.reseed,
                buffer_pool_mib=options.buffer_pool_mib,
            )
        )
    elif options.stress:
        stress.run(
            list(stress.SCENARIOS) if options.stress == ["all"] else list(options.stress),
            StressOptions(
                slow_connections=options.slow_connections,
                outage_rounds=options.outage_rounds,
                listing_mib=options.listing_mib,
                gunicorn_args=options.gunicorn_args,
            ),
        )
    else:
        standard.run(standard.Options(**_run_options(options)))


if __name__ == "__main__":
    main()
