"""`uv run python -m bench.stress_outage`: how fast a frozen database is refused, and whether /healthz stays quick.

For each serving model (the shipped gthread config; gunicorn's gevent worker too when gevent is
importable, e.g. `uv run --with gevent python -m bench.stress_outage`) it starts a throwaway
MariaDB and gunicorn (2 workers), and for each round: warms the pools with a burst of writes that
succeed, caches one listing, freezes MariaDB (SIGSTOP: TCP is still accepted, nothing answers),
fires N concurrent add-posts at once while sampling /healthz and the cached listing at a fixed
rate (open loop: one new connection per sample, so a slow answer does not hide the next one),
then thaws MariaDB and waits until every worker writes again, without a restart. Before each
freeze, the same burst against the running database, with /healthz sampled the same way, shows
what the machine's load alone costs /healthz.

It prints, per serving model, the latency distribution of the 503s (min/median/p99/max), any
answer that was not a 503 with Retry-After, and the /healthz and cached-listing latencies.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from bench import servers
from bench.seed import sign_up
from tests.support.api import ADD, LIST, bearer
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.mariadb import MariaDBServer
from tests.support.net import free_port
from tests.support.processes import freeze
from tests.support.schema import create_schema

T = TypeVar("T")
CLOSE = {"Connection": "close"}
TIMEOUT = 60.0
RECOVERY_SECONDS = 60.0
MODELS: dict[str, tuple[str, ...]] = {
    "gthread (shipped)": (),
    "gevent": ("-k", "gevent", "--worker-connections", "1000"),
}


@dataclass(frozen=True)
class Options:
    """How hard and how often to stress each serving model."""

    writers: int = 24
    rounds: int = 5
    spread_s: float = 0.0
    sample_interval_s: float = 0.1
    models: tuple[str, ...] = ()


@dataclass
class Figures:
    """What one serving model answered over every round."""

    refused: list[float] = field(default_factory=list)
    other: Counter[str] = field(default_factory=Counter)
    health_healthy: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    health_slowest: list[tuple[float, float]] = field(default_factory=list)
    health_other: Counter[str] = field(default_factory=Counter)
    listing: list[float] = field(default_factory=list)
    listing_other: Counter[str] = field(default_factory=Counter)
    recovery: list[float] = field(default_factory=list)


def _timed(call: Callable[[], requests.Response]) -> tuple[requests.Response | None, str, float]:
    started = time.monotonic()
    try:
        response = call()
    except requests.RequestException as exc:
        return None, type(exc).__name__, time.monotonic() - started
    return response, "", time.monotonic() - started


def _add(base: str, token: str, text: str) -> requests.Response:
    return requests.post(base + ADD, json={"text": text}, headers={**bearer(token), **CLOSE}, timeout=TIMEOUT)


def _concurrently(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` for i in range(count), all released at once by a barrier; their results, in order."""
    barrier = threading.Barrier(count)
    results: dict[int, T] = {}

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[index] for index in range(count)]


class Sampler:
    """GETs a URL every `interval` seconds on a new connection each, until stopped (open loop)."""

    def __init__(self, url: str, interval: float, headers: dict[str, str]) -> None:
        self.url = url
        self.interval = interval
        self.headers = {**headers, **CLOSE}
        self.latencies: list[float] = []
        self.slowest = (0.0, 0.0)  # (latency, seconds after start() it was sent)
        self.other: Counter[str] = Counter()
        self._started = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ticker = threading.Thread(target=self._tick)

    def start(self) -> None:
        """Begin sampling."""
        self._started = time.monotonic()
        self._ticker.start()

    def stop(self) -> None:
        """Stop sending, and wait for the samples in flight."""
        self._stop.set()
        self._ticker.join()
        for thread in self._threads:
            thread.join()

    def _tick(self) -> None:
        while not self._stop.is_set():
            thread = threading.Thread(target=self._sample)
            thread.start()
            self._threads.append(thread)
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        sent = time.monotonic() - self._started
        response, error, elapsed = _timed(lambda: requests.get(self.url, headers=self.headers, timeout=TIMEOUT))
        with self._lock:
            if response is not None and response.status_code == 200:
                self.latencies.append(elapsed)
                self.slowest = max(self.slowest, (elapsed, sent))
            else:
                self.other[error or str(response.status_code if response is not None else "?")] += 1


def _wait_until_writable(base: str, token: str, writers: int) -> float:
    """Seconds until a burst of `writers` concurrent add-posts all succeed (every worker recovered)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        statuses = _concurrently(writers, lambda i: _add(base, token, f"warm {i}").status_code)
        if set(statuses) == {200}:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the service did not recover within {RECOVERY_SECONDS:.0f} s")


def _round(mariadb: MariaDBServer, live: LiveServer, token: str, options: Options, figures: Figures) -> None:
    base = live.base
    _wait_until_writable(base, token, options.writers)
    # The same burst with the database up: what the machine's load alone does to /healthz.
    healthy = Sampler(base + "/healthz", options.sample_interval_s, {})
    healthy.start()
    _concurrently(options.writers, lambda i: _add(base, token, f"healthy {i}"))
    healthy.stop()
    figures.health_healthy += healthy.latencies
    assert requests.get(base + LIST, headers={**bearer(token), **CLOSE}, timeout=TIMEOUT).status_code == 200
    health = Sampler(base + "/healthz", options.sample_interval_s, {})
    listing = Sampler(base + LIST, options.sample_interval_s * 2, bearer(token))
    pid = int(mariadb.pid_file.read_text())
    freeze(pid)
    try:
        health.start()
        listing.start()

        def write(index: int) -> None:
            time.sleep(index * options.spread_s / options.writers)
            response, error, elapsed = _timed(lambda: _add(base, token, f"lost {index}"))
            if response is not None and response.status_code == 503 and int(response.headers["Retry-After"]) > 0:
                figures.refused.append(elapsed)
            else:
                figures.other[error or str(response.status_code if response is not None else "?")] += 1

        _concurrently(options.writers, write)
        health.stop()
        listing.stop()
    finally:
        os.kill(pid, signal.SIGCONT)
    figures.health += health.latencies
    figures.health_slowest.append(health.slowest)
    figures.health_other += health.other
    figures.listing += listing.latencies
    figures.listing_other += listing.other
    figures.recovery.append(_wait_until_writable(base, token, options.writers))


def measure(
    model: str,
    mariadb: MariaDBServer,
    work_dir: Path,
    options: Options,
    log_dir: Path | None = None,
    gunicorn_args: tuple[str, ...] | None = None,
) -> Figures:
    """Every round against one serving model, on a fresh database and a fresh gunicorn.

    `gunicorn_args` select the worker (default: this module's MODELS[model]).
    """
    name = model.split()[0]
    args = MODELS[model] if gunicorn_args is None else gunicorn_args
    url = mariadb.create_database(f"outage_{name}")
    create_schema(url)
    cache_dir = Path(tempfile.mkdtemp(prefix=f"cache-{name}-", dir=work_dir))
    live = start_gunicorn(
        "wsgi:app",
        port=free_port(),
        workers=servers.WORKERS,
        log_path=(log_dir or work_dir) / f"gunicorn-{name}.log",
        env={
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "JWT_SECRET_KEY": servers.BENCH_SECRET,
            "CACHE_DIR": str(cache_dir),
            "RATE_LIMIT_AUTH_PER_ADDRESS": servers.UNLIMITED,
            "RATE_LIMIT_SIGN_IN_FAILURES": servers.UNLIMITED,
            "LOG_LEVEL": "warning",
        },
        extra_args=("-c", "gunicorn.conf.py", *args),
    )
    figures = Figures()
    try:
        _, token = sign_up(live.base, "stress@example.com")
        for _ in range(options.rounds):
            _round(mariadb, live, token, options, figures)
    finally:
        live.stop()
    return figures


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of some latencies; inf when there are none."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _quantiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    return (
        f"min {ordered[0]:6.3f}  median {statistics.median(ordered):6.3f}  "
        f"p99 {p99(ordered):6.3f}  max {ordered[-1]:6.3f} s  (n={len(ordered)})"
    )


def report(model: str, figures: Figures, options: Options) -> None:
    """Print one serving model's figures."""
    when = f"sent over {options.spread_s:g} s" if options.spread_s else "at once"
    print(f"\n== {model}: MariaDB frozen (SIGSTOP), {options.writers} add-posts {when}, x {options.rounds} rounds")
    print(f"  503 + Retry-After : {_quantiles(figures.refused)}")
    if figures.other:
        print(f"  other answers     : {dict(figures.other)}")
    print(f"  /healthz meanwhile: {_quantiles(figures.health)}")
    print(f"  /healthz, same burst, database up: {_quantiles(figures.health_healthy)}")
    slowest = ", ".join(f"{latency:.2f} s sent at +{sent:.2f} s" for latency, sent in figures.health_slowest)
    print(f"  slowest /healthz  : per round, {slowest} after the freeze")
    if figures.health_other:
        print(f"  /healthz failures : {dict(figures.health_other)}")
    print(f"  cached listing    : {_quantiles(figures.listing)}")
    if figures.listing_other:
        print(f"  listing failures  : {dict(figures.listing_other)}")
    print(f"  writable again    : {_quantiles(figures.recovery)} after SIGCONT, no restart")


def main() -> None:
    """Parse the command line, run each serving model, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.stress_outage", description=__doc__)
    parser.add_argument("--writers", type=int, default=Options.writers, help="concurrent add-posts (default 24)")
    parser.add_argument("--rounds", type=int, default=Options.rounds, help="outages per serving model (default 5)")
    parser.add_argument(
        "--spread", type=float, default=0.0, help="send the writes evenly over this many seconds (default 0: at once)"
    )
    parser.add_argument("--log-dir", type=Path, help="keep each gunicorn's log here (default: deleted)")
    parser.add_argument("--model", action="append", default=[], choices=sorted(MODELS), help="only this model")
    args = parser.parse_args()
    models = tuple(args.model) or tuple(MODELS)
    if "gevent" in models and importlib.util.find_spec("gevent") is None:
        print("gevent is not installed: skipping it (try `uv run --with gevent python -m bench.stress_outage`)")
        models = tuple(model for model in models if model != "gevent")
    options = Options(writers=args.writers, rounds=args.rounds, spread_s=args.spread, models=models)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="stress-outage-") as tmp:
        work_dir = Path(tmp)
        mariadb = servers.start_mariadb(work_dir / "mariadb")
        try:
            for model in models:
                report(model, measure(model, mariadb, work_dir, options, args.log_dir), options)
        finally:
            mariadb.close()
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (a busy shared machine inflates every figure)")


if __name__ == "__main__":
    main()
