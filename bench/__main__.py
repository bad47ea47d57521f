"""`uv run --group bench python -m bench [--peer URL] [--redis] [--stress NAME] ...`: the one entry point."""

from __future__ import annotations

import argparse
import signal
import tempfile
from pathlib import Path

from bench import harness, standard, stress
from bench.stress.context import StressOptions
from bench.workloads import Wrk


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
    names = ", ".join(stress.SCENARIOS)
    parser.add_argument("--stress", action="append", default=[], metavar="NAME", help=f"{names}, or all")
    parser.add_argument("--slow-connections", type=int, default=1000, help="for --stress slow (default 1000)")
    parser.add_argument("--outage-rounds", type=int, default=3, help="for --stress outage (default 3)")
    parser.add_argument("--listing-mib", type=int, default=1024, help="for --stress listing (default 1024)")
    options = parser.parse_args()
    if options.db_only:
        serve_database()
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
        standard.run(
            standard.Options(
                wrk=Wrk(options.duration, options.connections, options.threads),
                pairs=options.pairs,
                peer=options.peer,
                redis=options.redis,
                mariadb=options.mariadb,
                only=tuple(options.only),
                gunicorn_args=options.gunicorn_args,
                profile=options.profile,
                label=options.label,
            )
        )


if __name__ == "__main__":
    main()
