"""What metrics cost a cached get_my_posts, in process: `uv run python -m bench.metrics_cost`.

Two apps side by side in one interpreter, on Flask's test client: one with metrics off
(METRICS_PORT unset, the default: no request hooks; the listing cache still counts its hit) and
one with them on. Short batches of requests alternate between the two, so a busy machine slows
both alike, and the table reports the median of the per-pair differences and ratios.

Run twice, each in a fresh interpreter, since prometheus_client picks its value store when it is
imported: `memory` (values in the process: the dev server, tests) and `multiprocess` (values in
files under PROMETHEUS_MULTIPROC_DIR on /dev/shm, as under gunicorn with METRICS_PORT set).
Also prints what the single operations cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

STORES = ("memory", "multiprocess")
SECRET = "bench-signing-key-that-is-at-least-32-bytes-long"
LIST = "/api/v1/posts/get_my_posts"
POSTS = 10


def _client(work: Path, name: str, metrics_port: int | None) -> tuple[FlaskClient, dict[str, str]]:
    """A test client of a fresh app with one user and a cached listing of POSTS posts."""
    from app import create_app
    from config import load_settings
    from tests.support.schema import create_schema

    database_url = f"sqlite:///{work / name}.db"
    create_schema(database_url)
    settings = load_settings(
        {},
        app_env="production",
        database_url=database_url,
        jwt_secret_key=SECRET,
        cache_backend="simple",
        rate_limits_enabled=False,
        log_level="WARNING",
        metrics_port=metrics_port,
    )
    client = create_app(settings).test_client()
    body = client.post("/api/v1/auth/sign_up", json={"email_address": f"{name}@example.com", "password": "x" * 12})
    headers = {"Authorization": f"Bearer {body.get_json()['access_token']}"}
    for number in range(POSTS):
        client.post("/api/v1/posts/add-post", json={"text": f"post {number}"}, headers=headers)
    assert client.get(LIST, headers=headers).status_code == 200  # the miss that fills the cache
    return client, headers


def measure(pairs: int, batch: int) -> dict[str, object]:
    """In this interpreter: per-request time off and on, `pairs` alternating batches of `batch` requests."""
    work = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    try:
        off, off_headers = _client(work, "off", None)
        on, on_headers = _client(work, "on", 9999)

        def batch_us(client: FlaskClient, headers: dict[str, str]) -> float:
            get = client.get
            started = time.perf_counter()
            for _ in range(batch):
                get(LIST, headers=headers)
            return (time.perf_counter() - started) / batch * 1e6

        for _ in range(3):  # warm both
            batch_us(off, off_headers)
            batch_us(on, on_headers)
        offs, ons = [], []
        for number in range(pairs):
            # Alternate which goes first, so neither always gets the warmer slot.
            if number % 2:
                ons.append(batch_us(on, on_headers))
                offs.append(batch_us(off, off_headers))
            else:
                offs.append(batch_us(off, off_headers))
                ons.append(batch_us(on, on_headers))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from observability.metrics import CACHE_HIT, LATENCY, REQUESTS

    counter = REQUESTS.labels("GET", "/bench", "200")
    histogram = LATENCY.labels("GET", "/bench", "200")
    operations = 100_000

    def per_op(function: Callable[[], object]) -> float:
        return min(timeit.repeat(function, number=operations, repeat=5)) / operations * 1e6

    return {
        "off": offs,
        "on": ons,
        "counter_inc_us": per_op(counter.inc),
        "cache_counter_inc_us": per_op(CACHE_HIT.inc),
        "histogram_observe_us": per_op(lambda: histogram.observe(0.0003)),
    }


def run_child(store: str, pairs: int, batch: int) -> dict[str, object]:
    """`measure` in a fresh interpreter with the store's environment."""
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    metrics_dir = None
    if store == "multiprocess":
        shm = "/dev/shm"  # noqa: S108 - mkdtemp makes it private
        metrics_dir = tempfile.mkdtemp(prefix="metrics-cost-", dir=shm if os.path.isdir(shm) else None)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    command = [sys.executable, "-m", "bench.metrics_cost", "--child", "--pairs", str(pairs), "--batch", str(batch)]
    try:
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure both value stores and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--pairs", type=int, default=60, help="alternating off/on batches (default 60)")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch (default 200)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(measure(options.pairs, options.batch)))
        return
    print(f"cached get_my_posts in process: {options.pairs} alternating pairs of {options.batch}-request batches")
    print(f"{'store':<14}{'off us':>9}{'on us':>9}{'added us':>10}{'on/off':>8}   single operations (us)")
    for store in STORES:
        result = run_child(store, options.pairs, options.batch)
        offs, ons = result["off"], result["on"]
        assert isinstance(offs, list) and isinstance(ons, list)
        added = statistics.median(on - off for off, on in zip(offs, ons, strict=True))
        ratio = statistics.median(on / off for off, on in zip(offs, ons, strict=True))
        operations = "  ".join(
            f"{name[:-3]} {result[name]:.2f}"
            for name in ("counter_inc_us", "cache_counter_inc_us", "histogram_observe_us")
        )
        print(
            f"{store:<14}{statistics.median(offs):>9.1f}{statistics.median(ons):>9.1f}"
            f"{added:>10.1f}{ratio:>8.3f}   {operations}",
            flush=True,
        )


if __name__ == "__main__":
    main()
