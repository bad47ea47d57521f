"""`uv run --group bench python -m bench [--scaling] [options]`: run the benchmark and print its table."""

from __future__ import annotations

import argparse

from bench import standard


def main() -> None:
    """Parse the command line and run the chosen mode."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scaling", action="store_true", help="grow posts to 1,000,000 rows and show flat/linear costs"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="runs per workload; the table shows medians (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--only", action="append", default=[], help="run only workloads whose name contains this")
    parser.add_argument("--keep-alive-only", action="store_true", help="skip the fresh-connection runs")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers in each workload's first run")
    parser.add_argument(
        "--gunicorn-threads", type=int, help="GUNICORN_THREADS for every server (default: gunicorn.conf.py's)"
    )
    parser.add_argument(
        "--worker-class",
        choices=("gthread", "gevent", "sync"),
        help="gunicorn worker class for every server, ceilings included (default: gunicorn.conf.py's gthread)",
    )
    parser.add_argument(
        "--redis", action="store_true", help="give the service REDIS_URL (a throwaway redis-server) for its cache"
    )
    parser.add_argument("--label", default="", help="name of the results files (default: a timestamp)")
    options = parser.parse_args()
    if options.scaling:
        from bench import scaling

        scaling.run(scaling.Options(duration_s=min(options.duration, 3.0), label=options.label))
        return
    standard.run(
        standard.Options(
            duration_s=options.duration,
            runs=options.runs,
            connections=options.connections,
            threads=options.threads,
            only=tuple(options.only),
            kinds=("keep-alive",) if options.keep_alive_only else tuple(standard.CONNECTION_KINDS),
            label=options.label,
            profile=options.profile,
            gunicorn_threads=options.gunicorn_threads,
            worker_class=options.worker_class,
            redis=options.redis,
        )
    )


if __name__ == "__main__":
    main()
