"""What metrics cost a cached get_my_posts, in process: `uv run python -m bench.metrics_cost`.

Flask's test client, one app per mode, each in a fresh interpreter (prometheus_client picks
in-memory or file-backed values when it is imported):

- `off`: METRICS_PORT unset (the default): no request hooks; the listing cache still counts its hit;
- `on`: METRICS_PORT set, values in process memory (the dev server, tests);
- `multiprocess`: METRICS_PORT set and PROMETHEUS_MULTIPROC_DIR on /dev/shm, as under gunicorn.

Modes alternate for several rounds; each round times many requests and keeps the best of a few
repeats, and the table shows each mode's median round and its ratio to `off` in the same run.
Also prints the cost of the single operations a request adds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

MODES = ("off", "on", "multiprocess")
SECRET = "bench-signing-key-that-is-at-least-32-bytes-long"
LIST = "/api/v1/posts/get_my_posts"
POSTS = 10


def measure(mode: str, requests: int, repeats: int) -> dict[str, float]:
    """In this interpreter: microseconds per cached get_my_posts, plus per-operation costs."""
    from flask import Flask

    from core.config import load_settings
    from core.factory import create_app
    from tests.support.schema import create_schema

    work = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    database_url = f"sqlite:///{work / 'posts.db'}"
    create_schema(database_url)
    settings = load_settings(
        {},
        app_env="production",
        database_url=database_url,
        jwt_secret_key=SECRET,
        cache_backend="simple",
        rate_limits_enabled=False,
        log_level="WARNING",
        metrics_port=None if mode == "off" else 9999,
    )
    app: Flask = create_app(settings)
    client = app.test_client()
    body = client.post("/api/v1/auth/sign_up", json={"email_address": "cost@example.com", "password": "x" * 12})
    headers = {"Authorization": f"Bearer {body.get_json()['access_token']}"}
    for number in range(POSTS):
        client.post("/api/v1/posts/add-post", json={"text": f"post {number}"}, headers=headers)
    assert client.get(LIST, headers=headers).status_code == 200  # the miss that fills the cache

    def one_request() -> None:
        client.get(LIST, headers=headers)

    best = min(timeit.repeat(one_request, number=requests, repeat=repeats))
    result = {"request_us": best / requests * 1e6}

    from observability.metrics import CACHE_HIT, LATENCY, REQUESTS

    counter = REQUESTS.labels("GET", "/bench", "200")
    histogram = LATENCY.labels("GET", "/bench", "200")
    operations = 100_000
    result["counter_inc_us"] = min(timeit.repeat(counter.inc, number=operations, repeat=3)) / operations * 1e6
    result["cache_counter_inc_us"] = min(timeit.repeat(CACHE_HIT.inc, number=operations, repeat=3)) / operations * 1e6
    result["histogram_observe_us"] = (
        min(timeit.repeat(lambda: histogram.observe(0.0003), number=operations, repeat=3)) / operations * 1e6
    )
    return result


def run_child(mode: str, requests: int, repeats: int) -> dict[str, float]:
    """`measure` in a fresh interpreter with the mode's environment."""
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    metrics_dir = None
    if mode == "multiprocess":
        shm = "/dev/shm"  # noqa: S108 - mkdtemp makes it private
        metrics_dir = tempfile.mkdtemp(prefix="metrics-cost-", dir=shm if os.path.isdir(shm) else None)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    command = [sys.executable, "-m", "bench.metrics_cost", "--child", mode]
    command += ["--requests", str(requests), "--repeats", str(repeats)]
    try:
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    finally:
        if metrics_dir:
            subprocess.run(["rm", "-rf", metrics_dir], check=False)
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    """Alternate the modes for a few rounds and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000, help="requests per timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per round (best kept)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(measure(options.child, options.requests, options.repeats)))
        return
    rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for number in range(options.rounds):
        for mode in MODES:
            rounds[mode].append(run_child(mode, options.requests, options.repeats))
        print(
            f"round {number + 1}: " + ", ".join(f"{mode} {rounds[mode][-1]['request_us']:.1f} us" for mode in MODES),
            flush=True,
        )
    base = statistics.median(result["request_us"] for result in rounds["off"])
    each = f"best of {options.repeats} x {options.requests} requests"
    print(f"\ncached get_my_posts in process, median of {options.rounds} rounds ({each})")
    print(f"{'mode':<14}{'us/request':>12}{'vs off':>10}{'added us':>10}")
    for mode in MODES:
        median = statistics.median(result["request_us"] for result in rounds[mode])
        print(f"{mode:<14}{median:>12.1f}{median / base:>10.3f}{median - base:>10.1f}")
    print("\nsingle operations (us, median of rounds)")
    for mode in ("on", "multiprocess"):
        costs = {
            name: statistics.median(result[name] for result in rounds[mode])
            for name in ("counter_inc_us", "cache_counter_inc_us", "histogram_observe_us")
        }
        print(f"{mode:<14}" + "  ".join(f"{name[:-3]} {cost:.2f}" for name, cost in costs.items()))


if __name__ == "__main__":
    main()
