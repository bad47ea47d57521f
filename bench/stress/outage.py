"""`outage`: MariaDB frozen (SIGSTOP: TCP still accepted, nothing answers) while concurrent add-posts arrive.

Each round warms the pools with a burst of writes that succeed, sends the same burst with the
database up while /healthz is sampled (what the machine's load alone costs it), freezes MariaDB,
fires the writes at once while /healthz and a cached listing are sampled at a fixed rate (open
loop: a new connection per sample, so a slow answer hides no later one), thaws it and waits
until every worker writes again, without a restart.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests

from bench.stress.context import Context, Section
from bench.workloads import ADD, LIST
from tests.support.processes import freeze

T = TypeVar("T")
CLOSE = {"Connection": "close"}
TIMEOUT = 60.0
RECOVERY_SECONDS = 60.0
SAMPLE_INTERVAL_S = 0.1


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of some latencies; inf when there are none."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def quantiles(values: list[float]) -> str:
    """`min .. median .. p99 .. max s (n)` of some latencies in seconds."""
    if not values:
        return "no samples"
    ordered = sorted(values)
    return (
        f"min {ordered[0]:.3f}  median {statistics.median(ordered):.3f}  p99 {p99(ordered):.3f}  "
        f"max {ordered[-1]:.3f} s  (n={len(ordered)})"
    )


def concurrently(count: int, call: Callable[[int], T]) -> list[T]:
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
    """GETs a URL every `interval` seconds on a new connection each, until stopped: 200s' latencies, other answers."""

    def __init__(self, url: str, interval: float, headers: dict[str, str]) -> None:
        self.url, self.interval, self.headers = url, interval, {**headers, **CLOSE}
        self.latencies: list[float] = []
        self.other: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ticker = threading.Thread(target=self._tick)

    def __enter__(self) -> Sampler:
        self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
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
        started = time.monotonic()
        try:
            status = requests.get(self.url, headers=self.headers, timeout=TIMEOUT).status_code
        except requests.RequestException as exc:
            self.other[type(exc).__name__] += 1
            return
        if status == 200:
            self.latencies.append(time.monotonic() - started)
        else:
            self.other[str(status)] += 1


@dataclass
class Figures:
    """What the service answered over every round."""

    refused: list[float] = field(default_factory=list)
    other: Counter[str] = field(default_factory=Counter)
    health_healthy: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    listing: list[float] = field(default_factory=list)
    failed_probes: Counter[str] = field(default_factory=Counter)
    recovery: list[float] = field(default_factory=list)


def _add(base: str, token: str, text: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **CLOSE}
    return requests.post(base + ADD, json={"text": text}, headers=headers, timeout=TIMEOUT)


def _wait_until_writable(base: str, token: str, writers: int) -> float:
    """Seconds until a burst of `writers` concurrent add-posts all succeed (every worker recovered)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        if {r.status_code for r in concurrently(writers, lambda i: _add(base, token, f"warm {i}"))} == {200}:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the service did not recover within {RECOVERY_SECONDS:.0f} s")


def _round(ctx: Context, figures: Figures) -> None:
    base, token, writers = ctx.server.base, ctx.accounts["adder"].token, ctx.options.outage_writers
    _wait_until_writable(base, token, writers)
    with Sampler(base + "/healthz", SAMPLE_INTERVAL_S, {}) as healthy:
        concurrently(writers, lambda i: _add(base, token, f"healthy {i}"))
    figures.health_healthy += healthy.latencies
    auth = {"Authorization": f"Bearer {ctx.accounts['lister'].token}"}
    pid = int(ctx.mariadb.pid_file.read_text())

    def write(index: int) -> None:
        started = time.monotonic()
        try:
            response = _add(base, token, f"lost {index}")
        except requests.RequestException as exc:
            figures.other[type(exc).__name__] += 1
            return
        if response.status_code == 503 and int(response.headers.get("Retry-After", "0")) > 0:
            figures.refused.append(time.monotonic() - started)
        else:
            figures.other[str(response.status_code)] += 1

    freeze(pid)
    try:
        with (
            Sampler(base + "/healthz", SAMPLE_INTERVAL_S, {}) as health,
            Sampler(base + LIST, SAMPLE_INTERVAL_S * 2, auth) as listing,
        ):
            concurrently(writers, write)
    finally:
        os.kill(pid, signal.SIGCONT)
    figures.health += health.latencies
    figures.listing += listing.latencies
    figures.failed_probes += health.other + listing.other
    figures.recovery.append(_wait_until_writable(base, token, writers))


def outage(ctx: Context) -> Section:
    """Every round against our service: the 503s' latencies, /healthz and a cached listing meanwhile."""
    figures = Figures()
    for _ in range(ctx.options.outage_rounds):
        _round(ctx, figures)
    o = ctx.options
    lines = [f"503 + Retry-After: {quantiles(figures.refused)}"]
    if figures.other:
        lines.append(f"other answers: {dict(figures.other)}")
    lines += [
        f"/healthz meanwhile: {quantiles(figures.health)}",
        f"/healthz, same burst, database up: {quantiles(figures.health_healthy)}",
        f"cached listing meanwhile: {quantiles(figures.listing)}",
        f"failed probes: {dict(figures.failed_probes) or 'none'}",
        f"writable again: {quantiles(figures.recovery)} after SIGCONT, no restart",
    ]
    return Section(f"outage: MariaDB frozen, {o.outage_writers} add-posts at once, x {o.outage_rounds} rounds", lines)
